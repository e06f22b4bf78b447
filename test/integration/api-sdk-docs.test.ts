// docs/sdk.md, compiled. Every ```ts block of the SDK guide is type-checked against the
// SDK's source (libs/client), so an example that no longer matches the SDK's API fails
// here. The app's own helpers the examples call (letIn, redirect, savePosition…) are
// declared with the types an app would give them.
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/stack.js';

const GUIDE = readFileSync(`${REPO_ROOT}docs/sdk.md`, 'utf8');

/** The fenced ts blocks of a markdown text, in order. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** What the examples take from the app around them. */
const PRELUDE = `
import type * as SDK from '@twofold/client';
declare const twofold: SDK.TwofoldClient;
declare const ssoToken: string;
declare const request: { ip: string };
declare function letIn(): void;
declare function refuse(): void;
declare function redirect(url: string): void;
declare const challengeId: string;
declare const codeTheUserTyped: string;
declare function showError(reason: 'bad_code' | 'replayed' | 'expired' | 'locked'): void;
declare function loadPosition(): Promise<string | undefined>;
declare function savePosition(id: string): Promise<void>;
declare function markVerified(session: string): void;
declare function forget(session: string): void;
declare const req: { headers: Record<string, string | string[] | undefined> };
declare const rawBody: Buffer;
declare const reply: { code(status: number): { send(): void } };
declare function applySessionEvent(event: SDK.SessionEvent): void;
declare const newSecret: string;
declare const oldSecret: string;
declare function recheckSessions(): Promise<void>;
declare const logoutId: string;
declare const loggedOutAt: Date;
declare function retryLater(reason: unknown): void;
declare function resubscribeWithoutPosition(): void;
declare function alertOperator(err: Error): void;
`;

/** One module: the blocks' imports on top, each block the body of its own async function. */
function examplesModule(blocks: string[]): string {
  const imports: string[] = [];
  const bodies = blocks.map((block, i) => {
    const lines = block.split('\n');
    imports.push(...lines.filter((l) => l.startsWith('import ')));
    const body = lines.map((l) => (l.startsWith('import ') ? '' : l)).join('\n');
    return `export async function example${i + 1}() {\n${body}\n}\n`;
  });
  return `${imports.join('\n')}\n${PRELUDE}\n${bodies.join('\n')}`;
}

/** Type errors of the module, as `example<n>: message` lines. */
function typeErrors(source: string): string[] {
  const fileName = `${REPO_ROOT}test/integration/sdk-docs-examples.generated.ts`;
  const base = ts.readConfigFile(`${REPO_ROOT}tsconfig.base.json`, (p) => ts.sys.readFile(p));
  const { options } = ts.parseJsonConfigFileContent(base.config, ts.sys, REPO_ROOT);
  Object.assign(options, { noEmit: true, composite: false, declaration: false, declarationMap: false });
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const where = d.file.fileName === fileName ? `line ${line + 1}` : d.file.fileName;
    const lines = source.split('\n');
    return `${where}: ${text}${d.file.fileName === fileName ? `\n    ${lines[line]?.trim()}` : ''}`;
  });
}

describe('docs/sdk.md', () => {
  const blocks = tsBlocks(GUIDE);

  it('has its examples where this test looks for them', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    expect(blocks.join('\n')).toContain('createTwofoldClient(');
  });

  it('type-checks every example against the SDK', () => {
    expect(typeErrors(examplesModule(blocks))).toEqual([]);
  }, 120_000);

  it('would catch an example that no longer matches the SDK', () => {
    const broken = [
      ...blocks,
      "const d = await twofold.decide({ user: 'alice', ssoToken, ip: request.ip });\nd.challengeUrl;",
    ];
    expect(typeErrors(examplesModule(broken)).join('\n')).toMatch(/user/);
  }, 120_000);
});
