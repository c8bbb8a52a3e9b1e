// The part of autocannon's API that bench/soak.ts uses (the package ships no types).
declare module 'autocannon' {
  interface Percentiles {
    p50: number;
    p99: number;
  }
  export interface RequestSpec {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }
  interface Options extends RequestSpec {
    url: string;
    connections?: number;
    amount?: number;
    timeout?: number;
    sampleInt?: number;
    requests?: RequestSpec[];
  }
  interface Result {
    latency: Percentiles;
    errors: number;
    timeouts: number;
    statusCodeStats: Record<string, { count: number }>;
  }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
