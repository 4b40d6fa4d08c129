// Invokes a built function bundle once, as the Lambda runtime would: a fresh process, the handler
// imported from the bundle, the event from a file. Prints the result as JSON.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [bundle, eventFile] = process.argv.slice(2);
const event = eventFile ? JSON.parse(readFileSync(eventFile, 'utf8')) : {};
const { handler } = await import(pathToFileURL(bundle).href);
const result = await handler(event, { awsRequestId: 'local-invoke', functionName: 'aiaas-test' });
process.stdout.write(`\n@@RESULT@@${JSON.stringify({ node: process.version, result })}\n`);
