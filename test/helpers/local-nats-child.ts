// A process that starts the embedded nats-server on a store dir (argv[2]), prints its URL and
// waits: tests kill it from outside to check the server does not outlive it.
import { startLocalNats } from '../../runtime/bus/local-nats.js';
import { silentLogger } from '../../runtime/log.js';

const server = await startLocalNats({ storeDir: process.argv[2]!, port: -1, log: silentLogger, install: false });
process.stdout.write(`${server.url}\n`);
setInterval(() => {}, 60_000);
