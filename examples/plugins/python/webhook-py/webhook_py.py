"""webhook-py: posts each run status as JSON to the config `url`, with
`Authorization: Bearer <token>` from the secret the config `token-secret` names.

    weft run p.yaml --plugins DIR --report webhook-py:url=https://hooks.example/ci,token-secret=hook \\
        --secret hook=env:HOOK_TOKEN --allow-http hooks.example
"""

from weft_sdk import Delivery, Event, PluginInfo, Reporter, export_reporter, http, secrets


class Webhook(Reporter):
    def describe(self) -> PluginInfo:
        return PluginInfo("webhook-py", "0.1.0").description(
            "Posts run statuses as JSON with a bearer token. Config: url, token-secret"
        )

    def report(self, event: Event) -> Delivery:
        url = event.config.get("url")
        if not url:
            return Delivery.permanent("reporter config `url` is required")
        headers = {"user-agent": "weft-webhook-py"}
        name = event.config.get("token-secret")
        if name:
            try:
                headers["authorization"] = f"Bearer {secrets.reveal(name)}"
            except secrets.SecretError as err:
                return Delivery.permanent(str(err))
        body = {
            "run": {"name": event.run_name, "uid": event.run_uid, "status": event.status, "reason": event.reason},
            "pipeline": event.pipeline_name,
            "description": event.description,
            "terminal": event.terminal,
            "attempt": event.attempt,
        }
        response = http.post(url, headers=headers, json_body=body)
        if 200 <= response.status < 300:
            return Delivery.done()
        if response.status in (408, 429) or response.status >= 500:
            wait = response.header("retry-after")
            return Delivery.retry_after(int(wait) * 1000 if wait and wait.isdigit() else 0)
        return Delivery.permanent(f"{url} answered {response.status}: {response.text[:200]}")


ReporterPlugin = export_reporter(Webhook)
