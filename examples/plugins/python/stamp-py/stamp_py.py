"""stamp-py: sets the param `buildId` to `<input.prefix>-<first 7 of params.commit>`,
refusing commits that are not hex."""

import string

from weft_sdk import Decorator, DecoratorInfo, Form, Input, Refuse, export_decorator, log


class Stamp(Decorator):
    def describe(self) -> DecoratorInfo:
        return (
            DecoratorInfo("stamp-py", "0.1.0")
            .description("Sets `buildId` from a prefix and the commit")
            .input_schema({"type": "object", "required": ["prefix"], "properties": {"prefix": {"type": "string"}}})
        )

    def decorate(self, form: Form, input: Input) -> None:
        commit = form.str("commit") or ""
        if not commit or any(c not in string.hexdigits for c in commit):
            raise Refuse(f"param `commit` must be a hex commit id, not {commit!r}")
        build_id = f"{input.str('prefix')}-{commit[:7]}"
        log.info(f"buildId = {build_id}")
        form.set("buildId", build_id)


FormDecoratorPlugin = export_decorator(Stamp)
