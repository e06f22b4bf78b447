import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EnrollmentService } from '@twofold/verification';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

/** DELETE /v1/admin/users/{username}/enrollment: reset a lost authenticator. */
export function adminUsersRoute(deps: {
  auth: Authenticator;
  enrollment: EnrollmentService;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.delete(
      '/v1/admin/users/:username/enrollment',
      {
        schema: {
          tags: ['admin'],
          summary: "Reset a user's authenticator (lost phone); they enroll again at the next login",
          params: Type.Object({ username: Type.String({ minLength: 1, maxLength: 256 }) }),
          response: { 204: Type.Null({ description: 'reset; the user enrolls again at the next login' }) },
        },
      },
      async (request, reply) => {
        await deps.auth.requireAdmin(request);
        const existed = await deps.enrollment.reset(request.params.username, 'admin');
        if (!existed) throw problems.notFound(`${request.params.username} has no authenticator to reset`);
        return reply.code(204).send(null);
      },
    );
  };
}
