// TEMPORARY STUB (infra synth) - delete me
export const handler = async () => ({ ok: true });
