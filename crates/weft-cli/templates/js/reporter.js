// {{name}}: posts each run status as JSON to the config `url`, with
// `Authorization: Bearer <token>` when the config `token-secret` names a granted secret.
import { Delivery, PluginInfo, exportReporter, secrets } from "#weft-sdk";

export class {{class}} {
  describe() {
    return new PluginInfo("{{name}}", "0.1.0").description("Posts run statuses as JSON. Config: url, token-secret");
  }

  async report(event) {
    const url = event.config.url;
    if (!url) return Delivery.permanent("reporter config `url` is required");
    const headers = { "content-type": "application/json" };
    const tokenSecret = event.config["token-secret"];
    if (tokenSecret) headers.authorization = `Bearer ${secrets.reveal(tokenSecret)}`;
    const body = JSON.stringify({ run: event.runName, pipeline: event.pipelineName, status: event.status, terminal: event.terminal });
    let response;
    try {
      response = await fetch(url, { method: "POST", headers, body });
    } catch (err) {
      return Delivery.retryAfter(0); // no response: retried with the host's backoff
    }
    return delivery(response.status);
  }
}

/** What a response status means for the delivery. */
export function delivery(status) {
  if (status >= 200 && status < 300) return Delivery.done();
  if (status === 408 || status === 429 || status >= 500) return Delivery.retryAfter(0);
  return Delivery.permanent(`the server answered ${status}`);
}

// jco componentize looks for the export under this name.
export const reporterPlugin = exportReporter({{class}});
