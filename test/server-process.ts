// The service as `npm start` runs it, in a child process on 127.0.0.1 and a free port.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { MODEL_DIR } from './helpers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ServerProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  base: string;
  /** Everything the process has logged so far (JSON lines from pino). */
  log(): string;
  /** Settles with the exit code. */
  exited: Promise<number | null>;
}

/** The environment `npm start` gives the process: its `NAME=${NAME:-default}` assignments. */
export function startScriptEnv(): Record<string, string> {
  const start = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: { start: string } }).scripts.start;
  return Object.fromEntries([...start.matchAll(/(\w+)=\$\{\1:-([^}]*)\} /g)].map(([, name, value]) => [name!, process.env[name!] ?? value!]));
}

/** The process, once it listens (its workers may still be loading). */
export async function spawnServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...startScriptEnv(), PORT: '0', HOST: '127.0.0.1', MODELS: 'mobilenet_v2_1.0_224', MODEL_DIR, ENGINE_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        child.stdout.off('data', onData);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${log}`)));
    setTimeout(() => reject(new Error(`server did not log its address within 60 s: ${log}`)), 60_000).unref();
  }).catch((err: Error) => {
    child.kill('SIGKILL');
    throw err;
  });
  return { child, base, log: () => log, exited };
}

/** The process, once it is ready to serve. */
export async function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await spawnServer(env);
  for (let i = 0; i < 300; i++) {
    if ((await fetch(`${server.base}/readyz`)).ok) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  server.child.kill('SIGKILL');
  throw new Error(`server never became ready: ${server.log()}`);
}
