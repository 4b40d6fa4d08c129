// What a user would write without aiaas: the umbrella @tensorflow/tfjs, unbundled, weights from S3.
const started = performance.now();
const tf = await import('@tensorflow/tfjs');
const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
const s3 = new S3Client({
  endpoint: process.env.BENCH_S3_ENDPOINT,
  forcePathStyle: true,
  region: 'us-east-1',
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const prefix = `models/${process.env.BENCH_MODEL}/versions/${process.env.BENCH_VERSION}/`;
const get = async (key) =>
  (
    await s3.send(new GetObjectCommand({ Bucket: process.env.BENCH_BUCKET, Key: prefix + key }))
  ).Body.transformToByteArray();
const modelJson = JSON.parse(new TextDecoder().decode(await get('model.json')));
const shards = [];
for (const path of modelJson.weightsManifest[0].paths) shards.push(await get(path));
const weightData = new Uint8Array(shards.reduce((n, s) => n + s.length, 0));
let offset = 0;
for (const s of shards) {
  weightData.set(s, offset);
  offset += s.length;
}
const model = await tf.loadLayersModel(
  tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest[0].weights,
    weightData: weightData.buffer,
  }),
);
const out = model.predict(tf.tensor2d([[6, 148, 72, 35, 0, 33.6, 0.627, 50]]));
await out.data();
process.stdout.write(JSON.stringify({ inProcessMs: performance.now() - started, backend: tf.getBackend() }));
