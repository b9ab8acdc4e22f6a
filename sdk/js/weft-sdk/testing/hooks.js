// Module resolution hook: `weft:plugin/log@0.2.0` -> ./fake/log.js, and so on.
const FAKES = new Set(["log", "secrets", "checkpoint"]);

export async function resolve(specifier, context, nextResolve) {
  const match = /^weft:plugin\/([a-z-]+)@/.exec(specifier);
  if (match && FAKES.has(match[1])) {
    return { url: new URL(`./fake/${match[1]}.js`, import.meta.url).href, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
