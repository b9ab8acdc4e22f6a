// world weft:plugin/reporter@0.2.0
export type * as WeftPluginLog020 from './interfaces/weft-plugin-log.js'; // import weft:plugin/log@0.2.0
export type * as WeftPluginSecrets020 from './interfaces/weft-plugin-secrets.js'; // import weft:plugin/secrets@0.2.0
export type * as WeftPluginTypes020 from './interfaces/weft-plugin-types.js'; // import weft:plugin/types@0.2.0
export * as reporterPlugin from './interfaces/weft-plugin-reporter-plugin.js'; // export weft:plugin/reporter-plugin@0.2.0
