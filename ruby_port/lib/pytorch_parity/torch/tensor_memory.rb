# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::Tensor (lib/torch/tensor.rb)
# Bug: Ruby's GC is not told of a tensor's LibTorch memory, so it seldom runs and frees that memory
#   late, where Python frees a tensor when its last reference goes
# Reproduction:
#   GC.disable
#   before = GC.stat(:malloc_increase_bytes)
#   tensor = Torch.empty(1 << 22)
#   counted = GC.stat(:malloc_increase_bytes) - before
#   GC.enable
#   counted >= tensor.numel * tensor.element_size
# Upstream gives: false

require "digest"
require "ffi"
require "torch"

module PytorchParity
  # torch.rb frees a tensor's LibTorch memory only when Ruby's GC collects the Ruby object holding
  # it, and Ruby's GC does not count that memory, so left alone it seldom runs: every batch's
  # activations stay allocated and the next batch pays page faults for fresh memory (bench/README.md
  # measures it). LibTorch's CPU allocator is therefore replaced by one that counts every tensor's bytes
  # in Ruby's malloc count (ruby_port/ext/pytorch_parity/tensor_memory_accounting.cpp, compiled by
  # bin/setup), so that Ruby's GC runs when tensors pile up, as it runs for its own objects.
  module TensorMemory
    ACCOUNTING_SOURCE = File.expand_path("../../../ext/pytorch_parity/tensor_memory_accounting.cpp", __dir__)
    ACCOUNTING_LIBRARY = File.expand_path("../../../ext/pytorch_parity/tensor_memory_accounting.so", __dir__)

    def self.install_accounting
      unless File.exist?(ACCOUNTING_LIBRARY)
        raise LoadError, "pytorch_parity: #{ACCOUNTING_LIBRARY} is missing; run bin/setup to compile it"
      end

      require ACCOUNTING_LIBRARY
      if File.exist?(ACCOUNTING_SOURCE) && TensorMemoryAccounting::SOURCE_SHA256 != Digest::SHA256.file(ACCOUNTING_SOURCE).hexdigest
        raise LoadError, "pytorch_parity: #{ACCOUNTING_LIBRARY} was compiled from another version of " \
                         "#{File.basename(ACCOUNTING_SOURCE)}; run bin/setup to compile it again"
      end
      TensorMemoryAccounting.install
    end
    install_accounting

    module_function

    # A GC now (the DataLoader's workers call it after sending a few MiB of batches): a minor one, or a
    # major one past OLD_GC_BYTES counted since the last.
    def release
      GC.start(full_mark: GC.stat(:oldmalloc_increase_bytes) > OLD_GC_BYTES, immediate_sweep: true)
    end
    OLD_GC_BYTES = 32 << 20
    private_constant :OLD_GC_BYTES

    # Gives the C heap's free memory back to the system (glibc's malloc_trim), with the free top that the
    # allocator keeps for the next step (tensor_memory_accounting.cpp): for when no step follows.
    def trim_heap
      TensorMemoryAccounting.trim_heap
    end

    # Runs the block with the tensors it makes (64 KiB and more) in their own mappings rather than in the
    # heap: for tensors that outlive the steps around them, such as a deep copy of the weights
    # (tensor_memory_accounting.cpp says why).
    def in_own_mappings(&block)
      TensorMemoryAccounting.in_own_mappings(&block)
    end

    # Counts tensor's memory, which LibTorch did not allocate through its CPU allocator (a DataLoader's
    # batch mapped from a worker's file), for as long as tensor's Ruby object lives: the allocator's count
    # then sees a batch that an old object keeps (see tensor_memory_accounting.cpp).
    def count_mapped(tensor)
      bytes = tensor.numel * tensor.element_size
      TensorMemoryAccounting.adjust(bytes)
      ObjectSpace.define_finalizer(tensor, uncount(bytes))
      tensor
    end

    # Yields the size bytes of memory at address (a tensor's storage on its way to a file) as Ruby Strings
    # of at most CHUNK bytes, each emptied once the block has it: one chunk in Ruby's heap at a time.
    def each_chunk(address, size)
      (0...size).step(CHUNK) do |start|
        chunk = FFI::Pointer.new(:uint8, address + start).get_bytes(0, [CHUNK, size - start].min)
        yield chunk
        chunk.clear
      end
    end
    CHUNK = 1 << 20
    private_constant :CHUNK

    # count_mapped's finalizer, made apart so that it does not hold the tensor.
    def uncount(bytes)
      ->(_object_id) { TensorMemoryAccounting.adjust(-bytes) }
    end

    # Gives the memory of tensors that nobody else holds (a method's intermediates) back now rather
    # than at the next GC: `tensor.data = torch.empty(0)` in Python; each Ruby object stays, empty.
    # Fresh memory costs a page fault per 4 KiB on first touch; freed memory is reused warm.
    def free(*tensors)
      tensors.each { |tensor| tensor.set_data(EMPTY[tensor.dtype]) }
      nil
    end

    # Keeps tensor's memory for as long as the view that block makes of it, no longer: the view
    # stays, tensor is freed (a view holds the memory it shows; freeing the tensor it came from only
    # drops that tensor's hold, which a Python function does by returning the view alone).
    def view_only(tensor)
      yield(tensor).tap { free(tensor) }
    end

    # A contiguous copy of a view the caller made for it alone; the view is freed (a view holds the
    # memory of the tensor it shows).
    def contiguous_copy(view)
      view.contiguous.tap { |copy| free_input(view, copy) }
    end

    # Frees input, which the caller made and no longer needs, unless output is input itself (a
    # function that returns its argument, or an in-place operation): the same memory, shape and
    # strides. A view of input stays intact (see view_only).
    def free_input(input, output)
      free(input) unless same_memory?(input, output)
    end

    # Frees intermediate, a tensor a forward made and handed to one step (a module, a transform), which
    # made output of it, and returns output. Left alone where it may still be needed: where it or output
    # requires grad (a graph may have saved it), where output is it (free_input), and where it has the
    # memory of input, the forward's own input, which is the caller's (Identity returns its input).
    def free_intermediate(intermediate, output, input)
      return output unless intermediate.is_a?(Torch::Tensor) && output.is_a?(Torch::Tensor)
      return output if intermediate.requires_grad || output.requires_grad
      return output if input.is_a?(Torch::Tensor) && same_memory?(intermediate, input)

      free_input(intermediate, output)
      output
    end

    # Whether a and b show the same memory the same way (the same tensor, or one that an in-place
    # operation or a function returning its argument gave back): the same start, dtype, shape and strides.
    def same_memory?(a, b)
      a.equal?(b) ||
        (a._data_ptr == b._data_ptr && a.dtype == b.dtype && a.shape == b.shape && a.dim.times.all? { |d| a.stride(d) == b.stride(d) })
    end

    # Torch.empty(0).to(dtype): torch.rb refuses Torch.empty(0, dtype: :float16)
    EMPTY = Hash.new { |empty, dtype| empty[dtype] = Torch.empty(0).to(dtype) }
    private_constant :EMPTY
  end
end
