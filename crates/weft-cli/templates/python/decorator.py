"""{{name}}: sets the param `greeting` to `<input.prefix>, <params.who>`."""

from weft_sdk import Decorator, DecoratorInfo, Form, Input, Refuse, export_decorator


class {{class}}(Decorator):
    def describe(self) -> DecoratorInfo:
        return (
            DecoratorInfo("{{name}}", "0.1.0")
            .description("Sets `greeting` from the input's prefix and the param `who`")
            .input_schema(
                {
                    "type": "object",
                    "required": ["prefix"],
                    "properties": {"prefix": {"type": "string"}},
                }
            )
        )

    def decorate(self, form: Form, input: Input) -> None:
        who = form.str("who")
        if not who or not who.strip():
            raise Refuse("param `who` is required")  # no run is created
        form.set("greeting", f"{input.str('prefix')}, {who}")
        # form.set_secret("run-token", value) adds a run-scoped secret.


# componentize-py looks for the export under this name.
FormDecoratorPlugin = export_decorator({{class}})
