// The local S3 server (s3rver) in its own process, as S3 is on other machines: the client side of
// every measurement (hashing, parsing, building tensors) does not share an event loop with it.
// Prints `ready <port>` once listening; its state lives in the directory given as argv[2].
import { startLocalS3 } from '../../local/s3.js';

const directory = process.argv[2];
if (!directory) throw new Error('usage: s3-server.ts <directory>');
const s3 = await startLocalS3({ directory });
process.stdout.write(`ready ${new URL(s3.endpoint).port}\n`);
const stop = () => void s3.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
