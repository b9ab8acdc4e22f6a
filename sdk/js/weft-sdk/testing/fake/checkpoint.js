import { host } from "./host.js";

export function get(key) {
  return host.checkpoints.get(key);
}

export function put(key, value) {
  host.checkpoints.set(key, value);
}
