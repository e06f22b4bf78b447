// Without API_HOST the api listens on :: (dual stack), so it answers on IPv4 and IPv6 alike:
// on an IPv6-only pod network as on an IPv4 one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;

beforeAll(async () => {
  world = await isolated('api-listen-host');
  services = await startServices(world, ['api'], { API_HOST: undefined });
});

afterAll(async () => {
  await services?.stop();
  await world?.cleanup();
});

describe('api listen address', () => {
  it('answers /healthz on 127.0.0.1 and on ::1 by default', async () => {
    const port = new URL(services.apiUrl).port;
    for (const base of [`http://127.0.0.1:${port}`, `http://[::1]:${port}`]) {
      const res = await fetch(`${base}/healthz`);
      expect(res.status, base).toBe(200);
    }
  });
});
