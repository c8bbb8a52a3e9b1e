// The process entry: listen, and on SIGTERM/SIGINT stop taking connections, finish what is in
// flight, close the workers and exit 0.
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const app = await buildApp(config, { logger: { level: config.logLevel } });
  app.modelsLoaded.then(
    () => app.log.info({ models: config.models, engine: config.engine, workers: config.poolSize }, 'models loaded; ready'),
    (err: Error) => {
      app.log.fatal({ err }, 'models failed to load');
      process.exit(1);
    },
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    await app.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
}

void main();
