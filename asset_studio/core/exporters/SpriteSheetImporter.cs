// Asset Studio sprite sheet importer for Unity (written by `asset-studio sheet --format unity`).
//
// Put this file in an Editor/ folder of your Unity project. Keep SHEET.json beside SHEET.png
// (and SHEET-1.png, SHEET-2.png ... for multi-page sheets). When Unity imports a page, this
// postprocessor turns it into a Multiple-mode sprite texture and applies the sprite rects
// (bottom-left origin, pixels) and pivots (normalized) written by Asset Studio. Re-import the
// PNG (right click > Reimport) after replacing the JSON.
#if UNITY_EDITOR
using System;
using System.Collections.Generic;
using System.IO;
using System.Text.RegularExpressions;
using UnityEditor;
using UnityEngine;

public class SpriteSheetImporter : AssetPostprocessor
{
    [Serializable] class RectData { public float x; public float y; public float w; public float h; }
    [Serializable] class PivotData { public float x; public float y; }
    [Serializable] class SpriteData { public string name; public string source; public RectData rect; public PivotData pivot; }
    [Serializable] class PageData { public string image; public int width; public int height; public SpriteData[] sprites; }
    [Serializable] class SheetData { public string generator; public float pixelsPerUnit; public PageData[] pages; }

    void OnPreprocessTexture()
    {
        SheetData sheet;
        PageData page = FindPage(assetPath, out sheet);
        if (page == null) return;

        var importer = (TextureImporter)assetImporter;
        importer.textureType = TextureImporterType.Sprite;
        importer.spriteImportMode = SpriteImportMode.Multiple;
        importer.spritePixelsPerUnit = sheet.pixelsPerUnit > 0 ? sheet.pixelsPerUnit : 100f;
        importer.alphaIsTransparency = true;
        importer.mipmapEnabled = false;
        // A texture scaled down on import would no longer match the rects.
        int side = Mathf.NextPowerOfTwo(Mathf.Max(page.width, page.height));
        if (importer.maxTextureSize < side) importer.maxTextureSize = Mathf.Min(side, 16384);

        var metas = new List<SpriteMetaData>();
        foreach (var s in page.sprites)
        {
            metas.Add(new SpriteMetaData
            {
                name = s.name,
                rect = new Rect(s.rect.x, s.rect.y, s.rect.w, s.rect.h),
                alignment = (int)SpriteAlignment.Custom,
                pivot = new Vector2(s.pivot.x, s.pivot.y),
                border = Vector4.zero,
            });
        }
#pragma warning disable 0618 // spritesheet works in every Unity version without the 2D Sprite package
        importer.spritesheet = metas.ToArray();
#pragma warning restore 0618
    }

    static PageData FindPage(string texturePath, out SheetData sheet)
    {
        sheet = null;
        string dir = Path.GetDirectoryName(texturePath);
        string stem = Path.GetFileNameWithoutExtension(texturePath);
        string file = Path.GetFileName(texturePath);
        var candidates = new List<string> { Path.Combine(dir, stem + ".json") };
        var m = Regex.Match(stem, "^(.*)-\\d+$");
        if (m.Success) candidates.Add(Path.Combine(dir, m.Groups[1].Value + ".json"));
        foreach (var json in candidates)
        {
            if (!File.Exists(json)) continue;
            SheetData data;
            try { data = JsonUtility.FromJson<SheetData>(File.ReadAllText(json)); }
            catch (ArgumentException) { continue; }
            if (data == null || data.pages == null || data.generator == null || !data.generator.StartsWith("asset-studio")) continue;
            foreach (var page in data.pages)
            {
                if (page.image == file) { sheet = data; return page; }
            }
        }
        return null;
    }
}
#endif
