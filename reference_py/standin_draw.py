"""How each stand-in image is drawn (reference_py/standin_data.py says what the set is and writes it).

Apart from standin_data so that checking an existing set (ensure_standin, which the Ruby trainer calls
through a Python process on every run on the defaults) does not import numpy and PIL.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def ellipse_points(cx, cy, rx, ry, steps=24):
    return [(cx + rx * math.cos(2 * math.pi * k / steps), cy + ry * math.sin(2 * math.pi * k / steps))
            for k in range(steps)]


def textured_background(rng, width, height):
    base = rng.uniform(50, 190, size=3)
    coarse = np.clip(128 + rng.normal(0, 28, size=(rng.integers(3, 9), rng.integers(3, 9), 3)), 0, 255)
    coarse = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, rng.uniform(4, 16), size=(height, width, 1))
    pixels = base + (np.asarray(coarse, dtype=np.float64) - 128) + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGBA")


def draw_clutter(rng, canvas):
    """Flowers, pebbles and leaves, in both classes alike."""
    width, height = canvas.size
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(rng.integers(1, 6)):
        kind = rng.choice(["flower", "pebble", "leaf"])
        radius = rng.uniform(0.03, 0.12) * min(width, height)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if kind == "flower":
            color = (int(rng.uniform(200, 255)), int(rng.uniform(170, 240)), int(rng.uniform(0, 120)), 230)
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=color)
        elif kind == "pebble":
            gray = int(rng.uniform(10, 90))
            draw.ellipse([cx - radius * 0.5, cy - radius * 0.4, cx + radius * 0.5, cy + radius * 0.4],
                         fill=(gray, gray, gray, 240))
        else:
            color = (int(rng.uniform(20, 90)), int(rng.uniform(90, 180)), int(rng.uniform(20, 80)), 200)
            draw.polygon(ellipse_points(cx, cy, radius * 1.6, radius * 0.5), fill=color)
    canvas.alpha_composite(overlay)


def ant_sprite(rng, length):
    """A dark ant along the x axis: abdomen, thorax, head, six legs, two antennae."""
    margin = length * 0.3
    sprite = Image.new("RGBA", (int(length + 2 * margin), int(length * 0.6 + 2 * margin)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sprite)
    color = (int(rng.uniform(15, 90)), int(rng.uniform(5, 45)), int(rng.uniform(0, 35)), 255)
    cy = sprite.size[1] / 2
    line = max(1, int(length / 25))
    for fraction in (0.4, 0.55, 0.7):  # legs from the thorax
        x = margin + fraction * length
        for side in (-1, 1):
            draw.line([(x, cy), (x + rng.uniform(-0.15, 0.15) * length, cy + side * 0.3 * length)], fill=color,
                      width=line)
    head_x = margin + 0.85 * length
    for side in (-1, 1):
        draw.line([(head_x, cy), (head_x + 0.2 * length, cy + side * 0.18 * length)], fill=color, width=line)
    for center, rx, ry in ((0.2, 0.2, 0.13), (0.55, 0.14, 0.06), (0.85, 0.09, 0.08)):
        draw.polygon(ellipse_points(margin + center * length, cy, rx * length, ry * length), fill=color)
    return sprite


def bee_sprite(rng, length):
    """A yellow body with black stripes, a black head and two pale wings, along the x axis."""
    margin = length * 0.15
    width, height = int(length + 2 * margin), int(length * 0.8 + 2 * margin)
    sprite = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    cy = height / 2
    yellow = (int(rng.uniform(200, 255)), int(rng.uniform(150, 215)), int(rng.uniform(0, 70)))
    body = Image.new("RGB", (width, height), yellow)
    body_draw = ImageDraw.Draw(body)
    stripes = int(rng.integers(3, 5))
    for k in range(stripes):
        x = margin + length * (0.2 + 0.55 * (k + 0.5) / stripes)
        body_draw.rectangle([x - 0.045 * length, 0, x + 0.045 * length, height], fill=(20, 15, 5))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(ellipse_points(margin + 0.45 * length, cy, 0.38 * length, 0.2 * length), fill=255)
    sprite.paste(body, (0, 0), mask)
    wings = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    wing_draw = ImageDraw.Draw(wings)
    for side in (-1, 1):
        wing_draw.polygon(ellipse_points(margin + 0.45 * length, cy + side * 0.25 * length, 0.2 * length,
                                         0.1 * length), fill=(235, 240, 250, 150))
    sprite.alpha_composite(wings)
    head = ellipse_points(margin + 0.88 * length, cy, 0.11 * length, 0.12 * length)
    ImageDraw.Draw(sprite).polygon(head, fill=(15, 10, 5, 255))
    return sprite


def place(rng, canvas, sprite):
    rotated = sprite.rotate(float(rng.uniform(0, 360)), resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.uniform(-0.2, 0.9) * canvas.size[0])
    y = int(rng.uniform(-0.2, 0.9) * canvas.size[1])
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    layer.paste(rotated, (x, y), rotated)
    canvas.alpha_composite(layer)


def draw_image(rng, class_name):
    width, height = (int(v) for v in rng.integers(200, 501, size=2))
    canvas = textured_background(rng, width, height)
    draw_clutter(rng, canvas)
    side = min(width, height)
    if class_name == "ants":
        for _ in range(rng.integers(4, 11)):
            place(rng, canvas, ant_sprite(rng, rng.uniform(0.07, 0.14) * side))
    else:
        for _ in range(rng.integers(1, 4)):
            place(rng, canvas, bee_sprite(rng, rng.uniform(0.25, 0.45) * side))
    image = canvas.convert("RGB").filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(2, 8), size=(height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def save_image(image, folder, stem, mode, quality):
    """Save in `mode`: RGB, L and CMYK as JPEG; P (palette) as PNG, JPEG cannot hold it. Returns the file."""
    if mode == "P":
        path = folder / f"{stem}.png"
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path, optimize=False)
    else:
        path = folder / f"{stem}.jpg"
        image.convert(mode).save(path, quality=quality)
    return path
