"""{{name}}: posts each run status as JSON to the config `url`, with
`Authorization: Bearer <token>` when the config `token-secret` names a granted secret."""

from weft_sdk import Delivery, Event, PluginInfo, Reporter, export_reporter, http, secrets


class {{class}}(Reporter):
    def describe(self) -> PluginInfo:
        return PluginInfo("{{name}}", "0.1.0").description(
            "Posts run statuses as JSON. Config: url, token-secret"
        )

    def report(self, event: Event) -> Delivery:
        url = event.config.get("url")
        if not url:
            return Delivery.permanent("reporter config `url` is required")
        headers = {}
        token_secret = event.config.get("token-secret")
        if token_secret:
            headers["authorization"] = f"Bearer {secrets.reveal(token_secret)}"
        body = {
            "run": event.run_name,
            "pipeline": event.pipeline_name,
            "status": event.status,
            "terminal": event.terminal,
        }
        # An http.HttpError (no response) is retried with the host's backoff.
        response = http.post(url, headers=headers, json_body=body)
        if 200 <= response.status < 300:
            return Delivery.done()
        if response.status in (408, 429) or response.status >= 500:
            return Delivery.retry_after(0)
        return Delivery.permanent(f"the server answered {response.status}")


# componentize-py looks for the export under this name.
ReporterPlugin = export_reporter({{class}})
