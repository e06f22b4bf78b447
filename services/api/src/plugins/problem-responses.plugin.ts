import type { FastifyInstance } from 'fastify';
import Type from 'typebox';

/** RFC 9457 problem details, as every error of the api leaves (problem.ts). */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'a stable URI naming the kind of problem' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String({ description: 'what is wrong and what to do about it' }),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'application/problem+json' },
);

/**
 * Documents the error answers of every JSON route in the OpenAPI document at /docs:
 * `4xx` and `5xx` are problem+json (a stream's errors too: they come before it starts).
 * Routes answering HTML (the hosted pages) document their own.
 */
export function registerProblemResponses(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as
      { hide?: boolean; produces?: string[]; response?: Record<string, unknown> } | undefined;
    if (!schema || schema.hide) return;
    const response = (schema.response ??= {});
    // Routes that answer in another media type (the HTML pages) document their errors themselves.
    const ownMediaTypes = Object.values(response).some(
      (r) => typeof r === 'object' && r !== null && 'content' in r,
    );
    // A stream (server-sent events) declares its media type in `produces`: document it as the 200.
    const stream = schema.produces?.find((type) => !type.includes('json'));
    if (stream && !Object.keys(response).some((code) => code.startsWith('2'))) {
      response['200'] = {
        description: `a ${stream} stream`,
        content: { [stream]: { schema: { type: 'string' } } },
      };
    }
    if (ownMediaTypes) return;
    response['4xx'] ??= ProblemSchema;
    response['5xx'] ??= ProblemSchema;
  });
}
