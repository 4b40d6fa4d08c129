// The warm floor: a bare Node HTTP server answering a fixed JSON body.
import { createServer } from 'node:http';

const body = JSON.stringify({
  predictions: [[0.5]],
  model_spec: { name: 'diabetes', version: '1', signature_name: 'serving_default' },
});
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`ready ${server.address().port}\n`));
