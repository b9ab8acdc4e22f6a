// stamp-js: sets the param `buildId` to `<input.prefix>-<first 7 of params.commit>`,
// refusing commits that are not hex; with input `secret`, also adds a run-scoped secret
// of that name holding the build id (masked in every log like any secret).
import { DecoratorInfo, Refuse, exportDecorator, log } from "#weft-sdk";

export class Stamp {
  describe() {
    return new DecoratorInfo("stamp-js", "0.1.0")
      .description("Sets `buildId` from a prefix and the commit")
      .inputSchema({
        type: "object",
        required: ["prefix"],
        properties: { prefix: { type: "string" }, secret: { type: "string" } },
      });
  }

  decorate(form, input) {
    const commit = form.str("commit") ?? "";
    if (!/^[0-9a-f]+$/i.test(commit)) throw new Refuse(`param \`commit\` must be a hex commit id, not "${commit}"`);
    const buildId = `${input.prefix}-${commit.slice(0, 7)}`;
    log.info(`buildId = ${buildId}`);
    form.set("buildId", buildId);
    if (input.secret) form.setSecret(input.secret, `${buildId}-token`);
  }
}

export const formDecoratorPlugin = exportDecorator(Stamp);
