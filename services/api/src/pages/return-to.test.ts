import { describe, expect, it } from 'vitest';
import { allowedReturnTo } from './return-to.js';

const origins = ['https://jira.example.com', 'http://127.0.0.1:8090'];

describe('allowedReturnTo', () => {
  it.each([
    [
      'https://jira.example.com/secure/Dashboard.jspa?a=1#x',
      'https://jira.example.com/secure/Dashboard.jspa?a=1#x',
    ],
    ['https://JIRA.example.com:443/', 'https://jira.example.com/'],
    ['http://127.0.0.1:8090/back', 'http://127.0.0.1:8090/back'],
  ])('keeps %s (a registered origin)', (raw, expected) => {
    expect(allowedReturnTo(raw, origins)).toBe(expected);
  });

  it.each([
    ['another origin', 'https://evil.example.net/'],
    ['a look-alike host', 'https://jira.example.com.evil.net/'],
    ['another port', 'https://jira.example.com:8443/'],
    ['another scheme', 'http://jira.example.com/'],
    ['a relative path', '/secure/Dashboard.jspa'],
    ['a scheme-relative URL', '//evil.example.net/'],
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['credentials in the URL', 'https://user:pw@jira.example.com/'],
    ['not a string', 42],
    ['empty', ''],
    ['too long', `https://jira.example.com/${'a'.repeat(2100)}`],
  ])('refuses %s', (_what, raw) => {
    expect(allowedReturnTo(raw, origins)).toBeUndefined();
  });

  it('refuses everything when the app registered no origin', () => {
    expect(allowedReturnTo('https://jira.example.com/', [])).toBeUndefined();
  });
});
