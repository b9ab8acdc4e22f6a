// `node --import <this file> --test`: lets plain Node load plugins and the SDK, whose
// `weft:plugin/...` imports only exist inside a component, by resolving them to the fake
// host in ./fake (see ./index.js).
import { register } from "node:module";

register("./hooks.js", import.meta.url);
