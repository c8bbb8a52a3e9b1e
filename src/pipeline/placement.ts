// Which workers hold which models, when a worker's memory cannot hold them all (WORKER_MEMORY_MB).
// A model's memory is what its engine keeps: the float32 weights and the largest set of
// activations alive at once, both from the cost model. Every model gets one worker first (the
// largest models first, each on the worker with the most room), then a copy on every other worker
// that still has room for it, so small models serve from many workers.
export class PlacementError extends Error {}

/** Bytes a worker's engine holds for the model: float32 parameters and peak activations. */
export const modelBytes = (model: { params: number; peakActivationBytes: number }): number => 4 * model.params + model.peakActivationBytes;

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

export interface Sized {
  name: string;
  bytes: number;
}

/** Per worker, the models it loads. Without a budget every worker loads every model. */
export function placeModels(models: readonly Sized[], workers: number, budgetBytes: number | undefined): string[][] {
  if (budgetBytes === undefined) return Array.from({ length: workers }, () => models.map((m) => m.name));
  const assignment: string[][] = Array.from({ length: workers }, () => []);
  const free = Array.from({ length: workers }, () => budgetBytes);
  const bySize = [...models].sort((a, b) => b.bytes - a.bytes);
  for (const model of bySize) {
    const roomiest = free.indexOf(Math.max(...free));
    if (free[roomiest]! < model.bytes) {
      throw new PlacementError(`model ${model.name} needs ${mb(model.bytes)} (float32 weights and peak activations) but the roomiest worker has ${mb(free[roomiest]!)} of WORKER_MEMORY_MB=${mb(budgetBytes)} left`);
    }
    assignment[roomiest]!.push(model.name);
    free[roomiest]! -= model.bytes;
  }
  for (const model of bySize) {
    for (let w = 0; w < workers; w++) {
      if (!assignment[w]!.includes(model.name) && free[w]! >= model.bytes) {
        assignment[w]!.push(model.name);
        free[w]! -= model.bytes;
      }
    }
  }
  // Each worker loads its models in the order they were given.
  const order = models.map((m) => m.name);
  return assignment.map((names) => [...names].sort((a, b) => order.indexOf(a) - order.indexOf(b)));
}

/** The workers a new model (or a new version of one) goes to, given what the others hold. */
export function placeOne(model: Sized, assignment: readonly (readonly string[])[], sizes: ReadonlyMap<string, number>, budgetBytes: number | undefined): number[] {
  const workers = assignment.map((_, w) => w);
  if (budgetBytes === undefined) return workers;
  const used = assignment.map((names) => names.filter((n) => n !== model.name).reduce((sum, n) => sum + (sizes.get(n) ?? 0), 0));
  const fits = workers.filter((w) => budgetBytes - used[w]! >= model.bytes);
  if (fits.length === 0) {
    throw new PlacementError(`model ${model.name} needs ${mb(model.bytes)} (float32 weights and peak activations) but no worker has that much of WORKER_MEMORY_MB=${mb(budgetBytes)} free (most free: ${mb(budgetBytes - Math.min(...used))})`);
  }
  return fits;
}
