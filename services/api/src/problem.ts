import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { VerificationError } from '@twofold/verification';

/** An RFC 9457 problem: a status, a stable type, and a detail a person can act on. */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'Problem';
  }
}

export const problems = {
  unauthorized: (detail: string) => new Problem(401, 'unauthorized', 'Unauthorized', detail),
  forbidden: (detail: string) => new Problem(403, 'forbidden', 'Forbidden', detail),
  notFound: (detail: string) => new Problem(404, 'not-found', 'Not Found', detail),
  invalid: (detail: string) => new Problem(400, 'invalid-request', 'Invalid request', detail),
  invalidEvent: (detail: string) => new Problem(422, 'invalid-event', 'Invalid event', detail),
  conflict: (detail: string) => new Problem(409, 'conflict', 'Conflict', detail),
  unavailable: (detail: string) => new Problem(503, 'unavailable', 'Service Unavailable', detail),
};

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send({
      type: `https://twofold.dev/problems/${problem.code}`,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      instance: reply.request.url,
      ...problem.extra,
    });
}

// character_not_in_repertoire (NUL in text), untranslatable_character (\u0000 in jsonb).
const POSTGRES_REFUSED_TEXT = new Set(['22021', '22P05']);

/** Every error leaves as problem+json: schema failures say which field, the rest say what to do. */
export function installProblemHandlers(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Requests arriving on kept-alive connections while the replica drains: tell the caller to retry elsewhere.
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close').header('retry-after', '1');
    return sendProblem(reply, problems.unavailable('this api replica is shutting down; retry the request'));
  });
  app.setErrorHandler((error: FastifyError | Problem, request, reply) => {
    if (error instanceof Problem) return sendProblem(reply, error);
    if (error instanceof VerificationError) return sendProblem(reply, fromVerificationError(error));
    if (error.validation) {
      const first = error.validation[0];
      const where = `${error.validationContext ?? 'body'}${first?.instancePath?.replaceAll('/', '.') ?? ''}`;
      const missing =
        first?.keyword === 'required' ? `.${String(first.params['missingProperty'])} is required` : '';
      const detail = missing ? `${where}${missing}` : `${where} ${first?.message ?? 'is invalid'}`;
      return sendProblem(reply, problems.invalid(detail));
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(
        reply,
        new Problem(
          413,
          'too-large',
          'Payload Too Large',
          `the request body is larger than this route accepts (${formatBytes(request.routeOptions.bodyLimit ?? 65_536)})`,
        ),
      );
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendProblem(
        reply,
        new Problem(
          415,
          'unsupported-media-type',
          'Unsupported Media Type',
          'send the body as application/json',
        ),
      );
    }
    if (POSTGRES_REFUSED_TEXT.has(String(error.code))) {
      // Every text in a request reaches Postgres as given; the one thing it cannot store is NUL.
      return sendProblem(
        reply,
        problems.invalid('a text in the request contains the NUL character (\\u0000); remove it'),
      );
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return sendProblem(reply, new Problem(error.statusCode, 'bad-request', 'Bad Request', error.message));
    }
    request.log.error({ err: error }, 'request failed');
    return sendProblem(
      reply,
      new Problem(
        500,
        'internal',
        'Internal Server Error',
        'an unexpected error occurred; it has been logged',
      ),
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problems.notFound(`no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}

const formatBytes = (bytes: number) => (bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`);

const VERIFICATION_STATUS = { malformed: 400, not_found: 404, conflict: 409, unavailable: 503 } as const;
const VERIFICATION_TITLE = {
  malformed: 'Invalid request',
  not_found: 'Not Found',
  conflict: 'Conflict',
  unavailable: 'Service Unavailable',
} as const;

export function fromVerificationError(error: VerificationError): Problem {
  return new Problem(
    VERIFICATION_STATUS[error.code],
    error.code.replace('_', '-'),
    VERIFICATION_TITLE[error.code],
    error.message,
  );
}
