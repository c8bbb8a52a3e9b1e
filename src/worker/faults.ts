// How a worker acts out a fault injected by WorkerPool.injectFault (tests only): the pool sets
// `fault` on a task message, nothing from a request can.
import type { Fault } from '../pool/messages.js';

/** Settles when the task may run: at once without a fault, later for 'delay', never for a dying worker. */
export async function actOut(fault: Fault | undefined): Promise<void> {
  if (!fault) return;
  switch (fault.kind) {
    case 'delay':
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
      return;
    case 'fail':
      throw new Error('injected task failure');
    case 'throw':
      // Outside the task's promise chain, so nothing catches it and the process dies.
      setImmediate(() => {
        throw new Error('injected uncaught error');
      });
      return new Promise<void>(() => {});
    case 'exit':
      process.exit(70);
    // eslint-disable-next-line no-fallthrough
    case 'abort':
      // What a failed assertion in native code does: SIGABRT, no JavaScript runs after it.
      process.abort();
    // eslint-disable-next-line no-fallthrough
    case 'hang':
      // Blocks the process's event loop; only the pool's watchdog can end it.
      for (;;);
  }
}
