/** The three interchangeable servers behind one entry point. */
import { startAsyncServer } from './async.js';
import { startSequentialServer } from './sequential.js';
import type { RunningServer, ServerModelName, ServerOptions } from './shell.js';
import { startWorkersServer } from './workers.js';

export { SERVER_MODELS, type RunningServer, type ServerModelName, type ServerOptions } from './shell.js';

export function startServer(model: ServerModelName, options: ServerOptions): Promise<RunningServer> {
  switch (model) {
    case 'sequential':
      return startSequentialServer(options);
    case 'workers':
      return startWorkersServer(options);
    case 'async':
      return startAsyncServer(options);
  }
}
