import { connect } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { installProblemHandlers, problems } from './problem.js';

function appWithSlowRoute() {
  const app = Fastify({ return503OnClosing: false });
  installProblemHandlers(app);
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  app.get('/slow', async () => {
    await released;
    return { ok: true };
  });
  app.get('/fail', async () => {
    throw problems.invalid('querystring.user must not be empty');
  });
  return { app, release };
}

describe('problem handlers', () => {
  it('answers a thrown problem as application/problem+json with its status and detail', async () => {
    const { app } = appWithSlowRoute();
    const res = await app.inject({ method: 'GET', url: '/fail' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({
      status: 400,
      detail: 'querystring.user must not be empty',
      instance: '/fail',
    });
    await app.close();
  });

  it('answers a request that arrives while the replica closes with a 503 problem, and finishes the one in flight', async () => {
    const { app, release } = appWithSlowRoute();
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(address);
    // Two pipelined requests on one kept-alive connection: the second is read while the first is in flight.
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = app.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write('GET /fail HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await closed;
    await new Promise((resolve) => socket.on('close', resolve));
    const [first, second] = answer.split(/(?=HTTP\/1\.1 )/);
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    expect(first).toContain('{"ok":true}');
    expect(second).toMatch(/^HTTP\/1\.1 503/);
    expect(second).toContain('application/problem+json');
    expect(second).toContain('shutting down');
  });
});
