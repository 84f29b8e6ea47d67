// Loads TexturePacker JSON pages with PixiJS v8's own Spritesheet parser (no GPU: the texture
// source only carries the page size) and prints what Pixi built, as JSON, on stdout.
// usage: node pixi_load.cjs PIXI_INSTALL_DIR SHEET.json [SHEET-2.json ...]
const path = require("path");
const fs = require("fs");
const { createRequire } = require("module");

const [pixiDir, ...jsonPaths] = process.argv.slice(2);
// Node 20 has no global navigator; Pixi's import-time Safari sniff reads its userAgent.
if (typeof globalThis.navigator === "undefined") globalThis.navigator = { userAgent: "node" };
const PIXI = createRequire(path.resolve(pixiDir, "package.json"))("pixi.js");
const { Spritesheet, Texture, TextureSource } = PIXI;

const rect = (r) => (r ? { x: r.x, y: r.y, w: r.width, h: r.height } : null);

(async () => {
  const out = { pixi_version: PIXI.VERSION, sheets: {} };
  for (const p of jsonPaths) {
    const data = JSON.parse(fs.readFileSync(p, "utf8"));
    // The page size is what the JSON's meta says; the check script compares it with the PNG.
    const source = new TextureSource({ width: data.meta.size.w, height: data.meta.size.h, resolution: 1 });
    const sheet = new Spritesheet(new Texture({ source }), data);
    await sheet.parse();
    const frames = {};
    for (const [name, tex] of Object.entries(sheet.textures)) {
      frames[name] = {
        label: tex.label,
        frame: rect(tex.frame), // region on the page (w/h already turned back for rotated frames)
        orig: rect(tex.orig),
        trim: rect(tex.trim),
        rotate: tex.rotate,
        width: tex.width, // what a Sprite of this texture measures
        height: tex.height,
      };
    }
    const animations = {};
    for (const [name, textures] of Object.entries(sheet.animations)) {
      animations[name] = textures.map((t) => (t ? t.label : null)); // null: a name Pixi did not find
    }
    out.sheets[p] = { resolution: sheet.resolution, frames, animations };
  }
  process.stdout.write(JSON.stringify(out, null, 1));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
