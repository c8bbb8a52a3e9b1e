// npm run soak: a bounded run of real HTTP load (autocannon) against the service as `npm start`
// runs it, with good and bad images mixed, sampling the resident memory of the server and its
// worker processes after each round. Passes when every answer is the expected one, and the
// memory after warm-up stays under the ceiling with no growth trend.
//
//   npm run soak -- [--requests 3000] [--rounds 10] [--warmup 2] [--connections 8] [--ceiling-mb 900]
// The server loads mobilenet_v2_1.0_224 with the default pool (POOL_SIZE, or one worker per core).
import autocannon, { type RequestSpec } from 'autocannon';
import { parseArgs } from 'node:util';
import { multipart, photo } from '../test/helpers.js';
import { startServer } from '../test/server-process.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '8' },
    'ceiling-mb': { type: 'string', default: '900' },
    // Growth allowed from the first sample after warm-up to the fitted end of the run.
    'max-growth-mb': { type: 'string', default: '25' },
  },
});
const [total, rounds, warmup, connections, ceilingMb, maxGrowthMb] = [
  args.requests, args.rounds, args.warmup, args.connections, args['ceiling-mb'], args['max-growth-mb'],
].map(Number) as [number, number, number, number, number, number];
const perRound = Math.floor(total / rounds);

const MB = 1024 * 1024;
const form = multipart([{ name: 'image', filename: 'parrot.jpg', data: photo('parrot.jpg') }]);
const raw = (body: Buffer): RequestSpec => ({ method: 'POST', path: '/v1/classify?topk=3', headers: { 'content-type': 'application/octet-stream' }, body });
// What each connection sends, in turn: mostly real photos, some refusals, so error paths soak too.
const mix: RequestSpec[] = [
  raw(photo('parrot.jpg')),
  raw(photo('cat.png')),
  { method: 'POST', path: '/v1/classify?topk=3', headers: form.headers, body: form.payload },
  raw(photo('burger.jpg')),
  raw(photo('truncated.jpg')),
  raw(photo('hot_dog.jpg')),
  raw(Buffer.from('not an image at all')),
  raw(photo('grace_hopper.png')),
];
const expected = new Map([['200', 6], ['422', 1], ['415', 1]]);

function slope(ys: number[]): number {
  const n = ys.length;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<void> {
  const server = await startServer(process.env.POOL_SIZE ? { POOL_SIZE: process.env.POOL_SIZE } : {});
  const gauge = async (name: string) => {
    const text = await (await fetch(`${server.base}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  };
  // The server process and its workers together.
  const residentMb = async () => ((await gauge('process_resident_memory_bytes')) + (await gauge('vision_workers_resident_memory_bytes'))) / MB;
  const samples: { round: number; rssMb: number; heapMb: number; rps: number; p50: number; p99: number }[] = [];
  const statuses = new Map<string, number>();
  let failures = 0;
  console.log(`soak: ${rounds} rounds x ${perRound} requests, ${connections} connections, ${warmup} warm-up round(s); mix of ${mix.length} requests per cycle`);
  console.log('round  requests  req/s   p50 ms  p99 ms  RSS MB  heap MB  statuses');
  try {
    console.log(`start  ${'-'.padStart(8)}  ${'-'.padStart(5)}  ${'-'.padStart(6)}  ${'-'.padStart(6)}  ${(await residentMb()).toFixed(1).padStart(6)}`);
    for (let round = 1; round <= rounds; round++) {
      const started = performance.now();
      // A run with `amount` ends on a sample tick: sample often so the wall time is the run's.
      const result = await autocannon({ url: server.base, connections, amount: perRound, timeout: 30, sampleInt: 50, requests: mix });
      const seconds = (performance.now() - started) / 1000;
      failures += result.errors + result.timeouts;
      for (const [code, { count }] of Object.entries(result.statusCodeStats)) statuses.set(code, (statuses.get(code) ?? 0) + Number(count));
      const rssMb = await residentMb();
      const heapMb = (await gauge('nodejs_heap_size_used_bytes')) / MB;
      const rps = perRound / seconds;
      samples.push({ round, rssMb, heapMb, rps, p50: result.latency.p50, p99: result.latency.p99 });
      const codes = Object.entries(result.statusCodeStats).map(([c, { count }]) => `${c}:${count}`).join(' ');
      console.log(
        `${String(round).padStart(5)}${round <= warmup ? '*' : ' '} ${String(perRound).padStart(8)}  ${rps.toFixed(1).padStart(5)}  ${result.latency.p50.toFixed(0).padStart(6)}  ${result.latency.p99.toFixed(0).padStart(6)}  ${rssMb.toFixed(1).padStart(6)}  ${heapMb.toFixed(1).padStart(7)}  ${codes}`,
      );
    }
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }

  const steady = samples.filter((s) => s.round > warmup).map((s) => s.rssMb);
  const maxMb = Math.max(...steady);
  const perRoundMb = slope(steady);
  const fittedGrowthMb = perRoundMb * (steady.length - 1);
  const perThousandMb = (perRoundMb * 1000) / perRound;
  const sent = [...statuses.values()].reduce((a, b) => a + b, 0);
  const cycles = sent / mix.length;
  const unexpected = [...statuses].filter(([code, n]) => !expected.has(code) || Math.abs(n - expected.get(code)! * cycles) > mix.length * connections);
  console.log('');
  console.log(`requests: ${sent} sent, statuses ${[...statuses].map(([c, n]) => `${c}:${n}`).join(' ')}, connection errors/timeouts ${failures}`);
  console.log(`RSS after warm-up: first ${steady[0]!.toFixed(1)} MB, min ${Math.min(...steady).toFixed(1)}, max ${maxMb.toFixed(1)}, last ${steady.at(-1)!.toFixed(1)} MB (ceiling ${ceilingMb} MB)`);
  console.log(`trend: ${perThousandMb >= 0 ? '+' : ''}${perThousandMb.toFixed(2)} MB per 1000 requests (least squares), ${fittedGrowthMb.toFixed(1)} MB over the run (allowed ${maxGrowthMb})`);
  const verdicts = [
    ['every answer as expected (200 for photos, 422 truncated, 415 text)', unexpected.length === 0 && failures === 0],
    [`RSS after warm-up <= ${ceilingMb} MB`, maxMb <= ceilingMb],
    [`no growth trend (<= ${maxGrowthMb} MB fitted over the run)`, fittedGrowthMb <= maxGrowthMb],
  ] as const;
  for (const [what, ok] of verdicts) console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}`);
  process.exitCode = verdicts.every(([, ok]) => ok) ? 0 : 1;
}

await main();
