// Measurement tools shared by the benchmark sections: statistics, tables, CPU noise from other
// processes, and a closed-loop HTTP load over loopback.
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';

export interface Stats {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length); // nearest rank
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    mean: sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

export const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : '-');
export const round = (v: number, digits = 3) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);
export const roundStats = (s: Stats) => ({ n: s.n, mean: round(s.mean), p50: round(s.p50), p90: round(s.p90), p99: round(s.p99), min: round(s.min), max: round(s.max) });

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const section = (title: string) => console.log(`\n== ${title} ${'='.repeat(Math.max(0, 88 - title.length))}`);
export const progress = (text: string) => process.stderr.write(`  .. ${text}\n`);
export const sleep = (milliseconds: number) => new Promise((r) => setTimeout(r, milliseconds));

// ---------------------------------------------------------------------------------------------
// Noise: CPU that other processes used while a phase ran (the machine is shared), from the
// machine-wide busy time in /proc/stat minus this process's own (main thread, workers, sharp).

export interface CpuMark {
  at: number;
  busySeconds?: number;
  ownSeconds: number;
}

export const USER_HZ = 100; // /proc/stat counts in USER_HZ ticks, 100 on Linux everywhere

export function cpuMark(): CpuMark {
  const own = process.cpuUsage();
  const mark: CpuMark = { at: performance.now(), ownSeconds: (own.user + own.system) / 1e6 };
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
    mark.busySeconds = (user + nice + system + irq + softirq + steal) / USER_HZ;
    void idle;
    void iowait;
  } catch {
    // not Linux: no noise figure
  }
  return mark;
}

/** Average number of cores other processes kept busy between two marks (NaN if unknown). */
export function otherCores(from: CpuMark, to: CpuMark): number {
  if (from.busySeconds === undefined || to.busySeconds === undefined) return NaN;
  const wallSeconds = (to.at - from.at) / 1000;
  return Math.max(0, (to.busySeconds - from.busySeconds - (to.ownSeconds - from.ownSeconds)) / wallSeconds);
}

export const coresText = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '?');

export interface Timings {
  decodeMs: number;
  queueMs: number;
  inferenceMs: number;
  totalMs: number;
}

export interface Reply {
  status: number;
  ms: number;
  timings?: Timings;
  /** The first label of the answer (top class, or highest-scoring detection). */
  label?: string;
}

export function post(agent: Agent, port: number, path: string, body: Buffer): Promise<Reply> {
  return new Promise((resolvePost, rejectPost) => {
    const started = performance.now();
    const req = httpRequest(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        headers: { 'content-type': 'image/jpeg', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', rejectPost);
        res.on('end', () => {
          const ms = performance.now() - started;
          const status = res.statusCode ?? 0;
          if (status !== 200) return resolvePost({ status, ms });
          try {
            const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timings?: Timings; predictions?: { label: string }[]; detections?: { label: string }[] };
            resolvePost({ status, ms, timings: json.timings, label: (json.predictions ?? json.detections)?.[0]?.label });
          } catch {
            resolvePost({ status: -1, ms });
          }
        });
      },
    );
    req.on('error', rejectPost);
    req.end(body);
  });
}

export interface Phase {
  concurrency: number;
  wallMs: number;
  otherCores: number;
  replies: Reply[];
  errors: string[];
}

/** A closed loop: `concurrency` clients, each sending its next request as soon as one returns. */
export async function runPhase(port: number, path: string, body: Buffer, concurrency: number, maxRequests: number, maxSeconds: number): Promise<Phase> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const replies: Reply[] = [];
  const errors: string[] = [];
  let issued = 0;
  const mark = cpuMark();
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  const client = async () => {
    while (issued < maxRequests && performance.now() < deadline) {
      issued++;
      try {
        replies.push(await post(agent, port, path, body));
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const wallMs = performance.now() - started;
  const other = otherCores(mark, cpuMark());
  agent.destroy();
  return { concurrency, wallMs, otherCores: other, replies, errors };
}
