// {{name}}: sets the param `greeting` to `<input.prefix>, <params.who>`.
import { DecoratorInfo, Refuse, exportDecorator } from "#weft-sdk";

export class {{class}} {
  describe() {
    return new DecoratorInfo("{{name}}", "0.1.0")
      .description("Sets `greeting` from the input's prefix and the param `who`")
      .inputSchema({ type: "object", required: ["prefix"], properties: { prefix: { type: "string" } } });
  }

  decorate(form, input) {
    const who = form.str("who");
    if (!who?.trim()) throw new Refuse("param `who` is required"); // no run is created
    form.set("greeting", `${input.prefix}, ${who}`);
    // form.setSecret("run-token", value) adds a run-scoped secret.
  }
}

// jco componentize looks for the export under this name.
export const formDecoratorPlugin = exportDecorator({{class}});
