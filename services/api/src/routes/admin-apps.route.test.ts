import { describe, expect, it } from 'vitest';
import {
  createNetworkDenylist,
  DEFAULT_WEBHOOK_DENIED_NETWORKS,
  DEFAULT_WEBHOOK_DENYLIST,
} from '@twofold/config';
import { webhookUrlProblem } from './admin-apps.route.js';

describe('webhookUrlProblem', () => {
  it.each([
    ['http://169.254.169.254/latest/meta-data/iam/', '169.254.169.254', '169.254.0.0/16'],
    // Other spellings the URL parser turns into the same address.
    ['http://0xa9fea9fe/', '169.254.169.254', '169.254.0.0/16'],
    ['http://2852039166/', '169.254.169.254', '169.254.0.0/16'],
    ['http://169.254.43518/', '169.254.169.254', '169.254.0.0/16'],
    ['http://[::ffff:169.254.169.254]/', '169.254.169.254', '169.254.0.0/16'],
    ['http://[::ffff:a9fe:a9fe]:8080/hook', '169.254.169.254', '169.254.0.0/16'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'fd00:ec2::254', 'fd00:ec2::254/128'],
    ['http://100.100.100.200/latest/meta-data/', '100.100.100.200', '100.100.100.200/32'],
    ['https://[fe80::1]/hook', 'fe80::1', 'fe80::/10'],
    ['http://0.0.0.0:8080/hook', '0.0.0.0', '0.0.0.0/8'],
    ['http://[::]/hook', '::', '::/128'],
  ])('refuses %s, naming %s and %s', (url, host, network) => {
    const problem = webhookUrlProblem(url, DEFAULT_WEBHOOK_DENYLIST);
    expect(problem).toContain(`webhookUrl host ${host} is in ${network}`);
    expect(problem).toContain('WEBHOOK_DENIED_NETWORKS');
  });

  it.each([
    ['http://[64:ff9b::a9fe:a9fe]/', '64:ff9b::a9fe:a9fe'],
    ['http://[2002:a9fe:a9fe::1]/', '2002:a9fe:a9fe::1'],
    ['http://[::a9fe:a9fe]/', '::a9fe:a9fe'],
  ])('refuses %s, saying it is the IPv4 address it embeds that is denied', (url, host) => {
    expect(webhookUrlProblem(url, DEFAULT_WEBHOOK_DENYLIST)).toContain(
      `webhookUrl host ${host} is in 169.254.0.0/16 (as 169.254.169.254, the IPv4 address it embeds)`,
    );
  });

  it.each([
    'http://127.0.0.1:9000/hook',
    'http://10.0.0.12/twofold',
    'http://172.16.4.5/twofold',
    'https://192.168.1.20/twofold',
    'http://[fd12::1]/hook',
    'http://jira.jira.svc.cluster.local:8080/rest/twofold/1/webhook',
    // A name is checked where it matters, on the address the broadcaster connects to.
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://localhost:8080/hook',
  ])('accepts %s by default', (url) => {
    expect(webhookUrlProblem(url, DEFAULT_WEBHOOK_DENYLIST)).toBeUndefined();
  });

  it('follows the operator: loopback when added, nothing when the list is empty', () => {
    const strict = createNetworkDenylist([...DEFAULT_WEBHOOK_DENIED_NETWORKS, '127.0.0.0/8']);
    expect(webhookUrlProblem('http://127.0.0.1:9000/hook', strict)).toContain(
      'webhookUrl host 127.0.0.1 is in 127.0.0.0/8',
    );
    expect(webhookUrlProblem('http://[::ffff:127.0.0.2]/', strict)).toContain('127.0.0.0/8');
    expect(webhookUrlProblem('http://169.254.169.254/', createNetworkDenylist([]))).toBeUndefined();
  });

  it('still refuses what it refused before, in the same words', () => {
    expect(webhookUrlProblem('http://jira:80800/hook', DEFAULT_WEBHOOK_DENYLIST)).toMatch(
      /is not a valid URL/,
    );
    expect(webhookUrlProblem('http://u:p@jira/hook', DEFAULT_WEBHOOK_DENYLIST)).toMatch(
      /must not carry credentials/,
    );
  });
});
