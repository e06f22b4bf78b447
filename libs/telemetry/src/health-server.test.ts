import { describe, expect, it } from 'vitest';
import { ANY_HOST, listenWithIpv4Fallback, startHealthServer } from './health-server.js';
import { createLogger } from './logger.js';
import { Gauge, Registry, consumerLiveness } from './metrics.js';

const logger = createLogger({ service: 'test', level: 'silent' });
const errno = (code: string) => Object.assign(new Error(`listen ${code}`), { code });

describe('listenWithIpv4Fallback', () => {
  it('listens on :: where the host has IPv6', async () => {
    const tried: string[] = [];
    const host = await listenWithIpv4Fallback(async (h) => void tried.push(h), ANY_HOST, logger);
    expect(host).toBe('::');
    expect(tried).toEqual(['::']);
  });

  it.each(['EAFNOSUPPORT', 'EADDRNOTAVAIL'])('falls back to 0.0.0.0 when :: fails with %s', async (code) => {
    const tried: string[] = [];
    const host = await listenWithIpv4Fallback(
      async (h) => {
        tried.push(h);
        if (h === '::') throw errno(code);
      },
      ANY_HOST,
      logger,
    );
    expect(host).toBe('0.0.0.0');
    expect(tried).toEqual(['::', '0.0.0.0']);
  });

  it('does not hide other errors, nor those of an address that was asked for', async () => {
    const failing = (code: string) => async () => {
      throw errno(code);
    };
    await expect(listenWithIpv4Fallback(failing('EADDRINUSE'), '::', logger)).rejects.toThrow('EADDRINUSE');
    await expect(listenWithIpv4Fallback(failing('EADDRNOTAVAIL'), '10.1.2.3', logger)).rejects.toThrow(
      'EADDRNOTAVAIL',
    );
  });
});

describe('startHealthServer', () => {
  it('answers on IPv6 and IPv4 loopback when bound by default (::, dual stack)', async () => {
    const health = await startHealthServer({
      port: 0,
      registry: new Registry(),
      readiness: async () => ({ kafka: true }),
      logger,
    });
    try {
      expect(health.host).toBe('::');
      for (const base of [`http://127.0.0.1:${health.port}`, `http://[::1]:${health.port}`]) {
        const res = await fetch(`${base}/healthz`);
        expect(res.status).toBe(200);
        expect((await fetch(`${base}/readyz`)).status).toBe(200);
      }
    } finally {
      await health.close();
    }
  });

  it('fails /healthz (503) while a liveness check is false', async () => {
    const registry = new Registry();
    const consumerCrashed = new Gauge({
      name: 'twofold_kafka_consumer_crashed',
      help: 'test',
      labelNames: ['group'],
      registers: [registry],
    });
    consumerCrashed.set({ group: 'g' }, 0);
    const health = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      readiness: async () => ({}),
      liveness: consumerLiveness({ consumerCrashed }),
      logger,
    });
    try {
      const healthz = () => fetch(`http://127.0.0.1:${health.port}/healthz`);
      expect((await healthz()).status).toBe(200);
      consumerCrashed.set({ group: 'g' }, 1);
      const res = await healthz();
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'failing', checks: { 'kafka consumer g': false } });
    } finally {
      await health.close();
    }
  });
});
