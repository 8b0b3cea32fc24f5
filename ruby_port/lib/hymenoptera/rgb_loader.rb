# frozen_string_literal: true

module Hymenoptera
  # The image loader of torchvision's ImageFolder, PIL's Image.open(path).convert("RGB"), on libvips:
  # a uint8 Torch tensor [H, W, 3], np.asarray(image)'s layout, whatever the file holds. Grayscale is
  # replicated, palette images are expanded, an alpha band is dropped (not composited), and CMYK is
  # converted with PIL's plain formula rather than libvips' colour-managed one (which differs by up
  # to 90 levels). torchvision-ruby's loader hands the file's own bands to the transforms. A file
  # that does not decode raises Vips::Error, also for a truncated JPEG (libvips would otherwise warn
  # and fill grey), and so does one larger than PIL opens (its decompression-bomb limit).
  module RGBLoader
    # PIL refuses to open an image of more than 2 * Image.MAX_IMAGE_PIXELS pixels.
    MAX_PIXELS = 2 * (1024 * 1024 * 1024 / 4 / 3)

    module_function

    def load(path)
      image = open(path)
      pixels = image.width * image.height
      if pixels > MAX_PIXELS
        raise Vips::Error, "Image size (#{pixels} pixels) exceeds limit of #{MAX_PIXELS} pixels, " \
                           "could be decompression bomb DOS attack."
      end
      return cmyk_to_rgb(VipsTensor.pixels(image.cast(:uchar))) if image.interpretation == :cmyk && image.bands == 4

      VipsTensor.pixels(rgb(image))
    end

    # The file decoded lazily, top to bottom. From the bytes when libvips has a loader for them in
    # memory (one read, no file handle left open until the image is garbage collected), else from
    # the file.
    def open(path)
      bytes = File.binread(path)
      if Vips.vips_foreign_find_load_buffer(bytes, bytes.bytesize)
        Vips::Image.new_from_buffer(bytes, "", access: :sequential, fail_on: :warning)
      else
        Vips::Image.new_from_file(path, access: :sequential, fail_on: :warning)
      end
    end

    # 8-bit sRGB, three bands.
    def rgb(image)
      image = image.colourspace(:srgb) unless image.interpretation == :srgb && image.format == :uchar
      image = image.extract_band(0, n: 3) if image.bands > 3
      image = image.cast(:uchar) unless image.format == :uchar
      image
    end

    # Pillow's cmyk2rgb on a uint8 tensor [H, W, 4]: with nk = 255 - K, each of R, G, B is
    # nk - C * nk / 255, rounded as Pillow's MULDIV255 does: ((p >> 8) + p) >> 8 with p = C * nk + 128.
    def cmyk_to_rgb(cmyk)
      cmyk = cmyk.to(:int32)
      nk = 255 - cmyk[0.., 0.., 3..3]
      product = (cmyk[0.., 0.., 0...3] * nk) + 128
      (nk - (((product >> 8) + product) >> 8)).clamp(0, 255).to(:uint8)
    end
  end
end
