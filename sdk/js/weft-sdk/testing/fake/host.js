// The fake host's state, shared by the fake interfaces and ./index.js.
export const host = {
  logs: [],
  secrets: {},
  granted: new Set(),
  checkpoints: new Map(),
};

/** Starts a fresh fake host with these secrets and checkpoints. */
export function reset({ secrets = {}, checkpoints = {} } = {}) {
  host.logs = [];
  host.secrets = { ...secrets };
  host.granted = new Set(Object.keys(secrets));
  host.checkpoints = new Map(Object.entries(checkpoints).map(([k, v]) => [k, typeof v === "string" ? new TextEncoder().encode(v) : v]));
}
