import { host } from "./host.js";

export function get(name) {
  if (!host.granted.has(name)) throw { payload: "not-granted" };
  if (!(name in host.secrets)) throw { payload: "not-found" };
  const value = host.secrets[name];
  return { name: () => name, reveal: () => value };
}
