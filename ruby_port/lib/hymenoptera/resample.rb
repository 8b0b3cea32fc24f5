# frozen_string_literal: true

module Hymenoptera
  # Pillow's bilinear resampling, bit for bit (Pillow 9.4, src/libImaging/Resample.c: precompute_coeffs,
  # normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc / Vertical_8bpc, ImagingResampleInner), on
  # images as uint8 Torch tensors [H, W, C]: what torchvision's Resize does to a PIL image,
  # img.resize((w, h), BILINEAR) with no box.
  #
  # Pillow resamples in two passes, horizontal first; an axis whose size does not change is not
  # resampled. Each output pixel is a weighted sum of input pixels under a triangle filter stretched
  # by the scale factor (so shrinking averages: antialiasing). The weights are computed in double
  # precision, normalised to sum 1 and quantised to 22-bit fixed point; a pass sums pixel * weight in
  # 32-bit integers from a start of one half, shifts right by 22 and clips to 0..255; the vertical
  # pass reads the horizontal one's 8-bit result.
  #
  # The weights are computed in plain Ruby Floats (IEEE doubles, Pillow's operations in Pillow's
  # order) and cached per (input size, output size). A pass gathers, for each tap position, one
  # input row per output row (index_select on dim 0 or on the rows of a planar image: whole rows,
  # cheap) and accumulates row * weight in int32; every output pixel has the same number of taps,
  # the shorter ones padded with weight 0 at a valid index. The horizontal pass works on the image
  # transposed to planes of columns [C, W, H], so that it too gathers rows. Intermediate tensors are
  # freed as soon as they are used (TensorMemory.free).
  module Resample
    PRECISION_BITS = 32 - 8 - 2
    HALF = 1 << (PRECISION_BITS - 1)
    CACHE_SIZE = 1024

    # The weights of one axis, per tap position t: the input index of every output pixel
    # (int64 [out]) and its weight (int32 [out]); clip: whether a sum can exceed 255 << 22 (the
    # weights are never negative, and each rounds up by at most one half: only with thousands of
    # taps, that is when shrinking more than about 8,000 times).
    Taps = Struct.new(:indices, :weights, :clip)

    module_function

    # image (uint8 [H, W, C], any strides) resampled to width x height: a new uint8 [height, width, C].
    def bilinear(image, width, height)
      in_height, in_width, = image.shape
      unless width.positive? && height.positive?
        raise ArgumentError, "cannot resample a #{in_width}x#{in_height} image to #{width}x#{height}: " \
                             "width and height must be at least 1"
      end
      return image.contiguous.clone if width == in_width && height == in_height
      return vertical(image, taps(in_height, height)) if width == in_width

      columns = horizontal(image, taps(in_width, width))
      return columns if height == in_height

      vertical(columns, taps(in_height, height)).tap { TensorMemory.free(columns) }
    end

    # [H, W, C] -> [H, out, C], through planes of columns [C, W, H] -> [C, out, H].
    def horizontal(image, taps)
      planes = image.permute(2, 1, 0).contiguous
      sums = accumulate(planes, 1, taps, [image.size(2), taps.indices.first.size(0), image.size(0)])
      TensorMemory.free(planes)
      sums.permute(2, 1, 0).contiguous.tap { TensorMemory.free(sums) }
    end

    # [H, W, C] -> [out, W, C].
    def vertical(image, taps)
      accumulate(image, 0, taps, [taps.indices.first.size(0), image.size(1), image.size(2)])
    end

    # The 8-bit result of one pass along dim of source, whose output has the given shape.
    def accumulate(source, dim, taps, shape)
      sums = Torch.full(shape, HALF, dtype: :int32)
      weight_shape = Array.new(shape.size, 1).tap { |s| s[dim] = shape[dim] }
      taps.indices.zip(taps.weights) do |indices, weights|
        rows = source.index_select(dim, indices)
        sums.addcmul!(rows, weights.view(*weight_shape))
        TensorMemory.free(rows)
      end
      sums.bitwise_right_shift!(PRECISION_BITS)
      sums.clamp!(0, 255) if taps.clip
      sums.to(:uint8).tap { TensorMemory.free(sums) }
    end

    # The taps of one axis, cached (the CACHE_SIZE pairs of sizes used last).
    def taps(in_size, out_size)
      @taps ||= {}
      key = [in_size, out_size]
      cached = @taps.delete(key)
      return @taps[key] = cached if cached

      @taps.shift while @taps.size >= CACHE_SIZE
      @taps[key] = build_taps(in_size, out_size)
    end

    def build_taps(in_size, out_size)
      bounds = coefficients(in_size, out_size)
      count = bounds.map { |_xmin, kk| kk.size }.max
      Taps.new(
        Array.new(count) { |t| Torch.tensor(bounds.map { |xmin, _kk| [xmin + t, in_size - 1].min }, dtype: :int64) },
        Array.new(count) { |t| Torch.tensor(bounds.map { |_xmin, kk| kk[t] || 0 }, dtype: :int32) },
        bounds.any? { |_xmin, kk| (255 * kk.sum) + HALF >= 256 << PRECISION_BITS }
      )
    end

    # For each output pixel, [its first input pixel, its integer weights]: Pillow's precompute_coeffs
    # with the bilinear filter (support 1), then normalize_coeffs_8bpc.
    def coefficients(in_size, out_size)
      scale = in_size.to_f / out_size
      filterscale = [scale, 1.0].max
      support = 1.0 * filterscale
      ss = 1.0 / filterscale
      Array.new(out_size) do |xx|
        center = (xx + 0.5) * scale
        xmin = [(center - support + 0.5).to_i, 0].max # (int): truncation toward zero, as C
        xmax = [(center + support + 0.5).to_i, in_size].min - xmin
        k = Array.new(xmax) { |x| bilinear_filter((x + xmin - center + 0.5) * ss) }
        ww = k.inject(0.0, :+) # in order, as C does (Array#sum would compensate)
        k.map! { |w| w / ww } unless ww.zero?
        [xmin, k.map { |w| (w.negative? ? -0.5 + (w * (1 << PRECISION_BITS)) : 0.5 + (w * (1 << PRECISION_BITS))).to_i }]
      end
    end

    def bilinear_filter(x)
      x = -x if x.negative?
      x < 1.0 ? 1.0 - x : 0.0
    end
  end
end
