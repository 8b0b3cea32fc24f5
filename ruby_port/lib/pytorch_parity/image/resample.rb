# frozen_string_literal: true

# pytorch_parity's image stack (image/), no fix of an upstream gem: the images of PIL that the fixes of
# torchvision-ruby work on, made and read here. This file: Pillow's bilinear resampling, what the
# transforms' resize computes (torchvision/transforms/functional.rb).

require "torch"
require_relative "../torch/tensor_memory"
require_relative "../torch/tensor_item"

module PytorchParity
  module Image
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
    # The weights are computed with float64 tensor operations, Pillow's double arithmetic in Pillow's
    # order, and cached per (input size, output size). A pass gathers, for each tap position, one input
    # row per output row (index_select of whole rows: cheap) and accumulates row * weight in int32;
    # every output pixel has the same number of taps, the shorter ones padded with weight 0 at a valid
    # index. Both passes work on planes: the horizontal one on planes of columns [C, W, H], the vertical
    # one on planes of rows [C, H, W], and the result is returned as the [H, W, C] view of its planes
    # (LibTorch copies to or from a 3-wide innermost dimension at half speed; ToTensor wants planes
    # anyway). Intermediate tensors are freed as soon as they are used (TensorMemory.free).
    module Resample
      PRECISION_BITS = 32 - 8 - 2
      HALF = 1 << (PRECISION_BITS - 1)
      CACHE_SIZE = 1024

      # The weights of one axis, per tap position t: the input index of every output pixel
      # (int64 [out]) and its weight (int32 [out]); clip: whether a sum can exceed 255 << 22 (the
      # weights are never negative, and each rounds up by at most one half: only with thousands of
      # taps, that is when shrinking more than about 8,000 times).
      Taps = Struct.new(:indices, :weights, :clip) do
        # The weights viewed to broadcast along dim of a tensor of rank dims.
        def weights_along(dim, dims)
          (@along ||= {})[[dim, dims]] ||= weights.map { |w| w.view(*Array.new(dims) { |d| d == dim ? -1 : 1 }) }
        end
      end

      module_function

      # image (uint8 [H, W, C], any strides) resampled to width x height: uint8 [height, width, C], a
      # view of its planes [C, height, width] unless only the height changes.
      def bilinear(image, width, height)
        in_height, in_width, = image.shape
        unless width.positive? && height.positive?
          raise ArgumentError, "cannot resample a #{in_width}x#{in_height} image to #{width}x#{height}: " \
                               "width and height must be at least 1"
        end
        return image.clone if width == in_width && height == in_height
        return pass(image, taps(in_height, height)) if width == in_width # rows of the image itself

        columns = TensorMemory.contiguous_copy(image.permute(2, 1, 0)) # [C, W, H]: each plane's rows are the image's columns
        planes = pass(columns, taps(in_width, width), dim: 1)
        TensorMemory.free(columns)
        return TensorMemory.view_only(planes) { |p| p.permute(2, 1, 0) } if height == in_height

        rows = TensorMemory.contiguous_copy(planes.transpose(1, 2)) # [C, H, width]
        TensorMemory.free(planes)
        result = pass(rows, taps(in_height, height), dim: 1)
        TensorMemory.free(rows)
        TensorMemory.view_only(result) { |p| p.permute(1, 2, 0) }
      end

      # One pass along dim of source: output row r (along dim) is the sum over t of
      # source's row indices[t][r] * weights[t][r], shifted and clipped to 8 bits.
      def pass(source, taps, dim: 0)
        sums = nil
        taps.indices.zip(taps.weights_along(dim, source.dim)) do |indices, weights|
          rows = source.index_select(dim, indices)
          sums = sums ? sums.addcmul!(rows, weights) : rows.type(:int32).mul!(weights)
          TensorMemory.free(rows)
        end
        sums.add!(HALF).bitwise_right_shift!(PRECISION_BITS)
        sums.clamp!(0, 255) if taps.clip
        sums.type(:uint8).tap { TensorMemory.free(sums) }
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

      # Pillow's precompute_coeffs with the bilinear filter (support 1) and normalize_coeffs_8bpc, on
      # all output pixels at once, in float64 tensor operations that round as the C double expressions
      # do (each operation rounds once; the sum of an output's weights is taken in tap order).
      def build_taps(in_size, out_size)
        scale = in_size.to_f / out_size
        filterscale = [scale, 1.0].max
        support = 1.0 * filterscale
        ss = 1.0 / filterscale
        center = Torch.arange(out_size, dtype: :float64).add!(0.5).mul!(scale) # (xx + 0.5) * scale
        xmin = (center - support).add!(0.5).type(:int64).clamp!(0, in_size) # (int) truncates toward 0, as C
        count = (center + support).add!(0.5).type(:int64).clamp!(0, in_size).sub!(xmin) # xmax -= xmin
        taps = Torch.arange(TensorItem.item(count.max), dtype: :int64).view(-1, 1)
        x = taps + xmin # [tap, output pixel]: x + xmin
        k = x.type(:float64).sub!(center).add!(0.5).mul!(ss) # (x + xmin - center + 0.5) * ss
        k.abs!.neg!.add!(1.0).clamp!(0.0, 1.0).mul!(taps.lt(count)) # bilinear_filter; 0 beyond xmax
        ww = Torch.zeros(out_size, dtype: :float64)
        k.unbind(0).each { |w| ww.add!(w) }
        kk = Torch.where(ww.ne(0), k / ww, k).mul!(1 << PRECISION_BITS).add!(0.5).type(:int32) # (int)(0.5 + k * 2^22)
        clip = TensorItem.item(kk.sum(0, dtype: :int64).mul!(255).add!(HALF).ge(256 << PRECISION_BITS).any)
        Taps.new(x.clamp!(0, in_size - 1).unbind(0), kk.unbind(0), clip)
      end
    end
  end
end
