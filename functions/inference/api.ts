/**
 * The TensorFlow Serving REST API, as pure functions: routing (routes.ts), predict requests checked
 * against the model's signature (predict-request.ts) and answers (answers.ts). Nothing there touches
 * tfjs or AWS, so every client mistake is caught (and named) before a tensor exists. This module
 * only gathers them for callers that want the whole API.
 */
export {
  jsonText,
  metadataResponse,
  nest,
  type OutputTensor,
  PredictAnswer,
  predictResponse,
  statusResponse,
} from './answers.js';
export {
  DEFAULT_LIMITS,
  decodeBody,
  type InputTensor,
  type Limits,
  MAX_BODY_BYTES,
  type PredictRequest,
  parsePredictRequest,
} from './predict-request.js';
export { type Route, route } from './routes.js';
