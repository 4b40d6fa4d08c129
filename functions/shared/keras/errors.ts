/**
 * The three ways a Keras file is refused: not a Keras model this importer can read, a layer or
 * option TF.js cannot run as Keras did, or stored weights that do not fit the config. All are
 * ValidationErrors, so callers report them as the user's input, never as a fault.
 */
import { ValidationError } from '../errors.js';

/** The bytes are not a Keras model file this importer can read (wrong format, corrupt, weights only). */
export class KerasFormatError extends ValidationError {
  override readonly name: string = 'KerasFormatError';
}

/** The model uses a layer, model class, option or custom object that TF.js cannot run as Keras did. */
export class UnsupportedKerasLayerError extends ValidationError {
  override readonly name: string = 'UnsupportedKerasLayerError';
  constructor(
    readonly layerName: string,
    readonly className: string,
    reason: string,
  ) {
    super(`Keras layer '${layerName}' (class ${className}) is not supported: ${reason}`);
  }
}

/** The weights stored in the file do not fit the layers in its config. */
export class KerasWeightsError extends ValidationError {
  override readonly name: string = 'KerasWeightsError';
}
