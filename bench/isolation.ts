// What running inference workers as child processes costs per request, against worker threads:
// the round trip of a task message (the model's input pixels out, the answer back) over the
// pool's IPC channel (structured-clone serialization over a pipe) and over a worker thread's
// postMessage, measured side by side in alternating blocks. The difference is the isolation's
// price: what each request pays so that a native fault costs only its worker.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { ms, progress, roundStats, section, stats, table, type Stats } from './lib.js';

export interface IsolationBenchOptions {
  roundTrips: number;
}

/** Answers each message with a reply of the size asked for. */
const ECHO = (receive: string, reply: string) => `${receive}((m) => ${reply}({ id: m.id, answer: new Uint8Array(m.replyBytes) }));`;

interface Peer {
  roundTrip(pixels: Uint8Array, replyBytes: number): Promise<void>;
  close(): Promise<void>;
}

function threadPeer(): Peer {
  const worker = new Worker(ECHO("require('node:worker_threads').parentPort.on.bind(require('node:worker_threads').parentPort, 'message')", "require('node:worker_threads').parentPort.postMessage.bind(require('node:worker_threads').parentPort)"), { eval: true });
  return peer((m) => worker.postMessage(m), (f) => worker.on('message', f), () => worker.terminate().then(() => {}));
}

function processPeer(): Peer {
  const child = spawn(process.execPath, ['-e', ECHO("process.on.bind(process, 'message')", 'process.send.bind(process)')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  return peer((m) => child.send(m as object), (f) => child.on('message', f), async () => {
    child.kill('SIGKILL');
  });
}

function peer(post: (m: unknown) => void, listen: (f: (m: { id: number }) => void) => void, close: () => Promise<void>): Peer {
  let next = 0;
  const waiting = new Map<number, () => void>();
  listen((m) => waiting.get(m.id)?.());
  return {
    roundTrip: (pixels, replyBytes) => new Promise<void>((resolve) => {
      const id = next++;
      waiting.set(id, () => {
        waiting.delete(id);
        resolve();
      });
      // The pool sends the task with its pixels, as it does for every request.
      post({ id, task: { model: 'm', pixels, request: { task: 'classification', topk: 5 } }, replyBytes });
    }),
    close,
  };
}

const CASES = [
  { name: 'classification (224x224 in, top-5 out)', inputBytes: 224 * 224 * 3, replyBytes: 100 },
  { name: 'segmentation (513x513 in, class map out)', inputBytes: 513 * 513 * 3, replyBytes: 513 * 513 },
];

export async function benchIsolation(opts: IsolationBenchOptions) {
  const thread = threadPeer();
  const child = processPeer();
  const rows: { name: string; thread: Stats; process: Stats }[] = [];
  try {
    for (const { name, inputBytes, replyBytes } of CASES) {
      progress(`isolation: ${name}, ${opts.roundTrips} round trips each`);
      const pixels = new Uint8Array(inputBytes).map((_, i) => i & 255);
      const samples = { thread: [] as number[], process: [] as number[] };
      for (let i = 0; i < 50; i++) await Promise.all([thread.roundTrip(pixels, replyBytes), child.roundTrip(pixels, replyBytes)]);
      // Alternating blocks, so the machine's noise falls on both alike.
      for (let done = 0; done < opts.roundTrips; done += 20) {
        for (const [key, p] of [['thread', thread], ['process', child]] as const) {
          for (let i = 0; i < 20; i++) {
            const started = performance.now();
            await p.roundTrip(pixels, replyBytes);
            samples[key].push(performance.now() - started);
          }
        }
      }
      rows.push({ name, thread: stats(samples.thread), process: stats(samples.process) });
    }
  } finally {
    await thread.close();
    await child.close();
  }
  section('8. Worker isolation: task round trip, worker thread vs child process (the pool uses processes)');
  console.log(table(
    ['task message', 'thread p50', 'process p50', 'process p99', 'cost per request (p50)'],
    rows.map((r) => [r.name, ms(r.thread.p50), ms(r.process.p50), ms(r.process.p99), `+${ms(r.process.p50 - r.thread.p50)} ms`]),
  ));
  return rows.map((r) => ({ name: r.name, threadMs: roundStats(r.thread), processMs: roundStats(r.process), costP50Ms: Number((r.process.p50 - r.thread.p50).toFixed(3)) }));
}
