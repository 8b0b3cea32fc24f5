# frozen_string_literal: true

# Part of: torchvision/models/resnet.rb

require "torch"
require "torchvision"
require_relative "../tensor_memory"

module PytorchParity
  # When a forward may free what passes between its modules as soon as the next module has used it, as
  # Python's refcount frees it (TensorMemory.free_intermediate, which also spares what autograd may hold and
  # the forward's input): when no code that saw it can keep it, that is when the forward's module and every
  # module it calls, down to the leaves, run torch.rb's, torchvision-ruby's and pytorch_parity's code only. A
  # user's module, or a forward or call a user defined on one of the gems' modules or classes, may keep what
  # it is given, as a Python module may keep a reference: then the forward frees nothing.
  # The modules a forward calls are known for LEAVES (none) and for the modules of this fix, which list
  # theirs (modules_called); any other module counts as one that may keep what it is given.
  module Intermediates
    # torch.rb's modules whose forward calls no other module: what they are given only LibTorch sees.
    LEAVES = %i[
      Conv1d Conv2d Conv3d BatchNorm1d BatchNorm2d BatchNorm3d LayerNorm GroupNorm
      ReLU LeakyReLU Sigmoid Tanh Softmax LogSoftmax Dropout Dropout2d Identity Embedding Linear
      MaxPool1d MaxPool2d MaxPool3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d
      AdaptiveAvgPool3d AdaptiveMaxPool2d
    ].to_h { |name| [Torch::NN.const_get(name), true] }.compare_by_identity.freeze
    OWN_CODE = [
      File.join(File.dirname($LOAD_PATH.resolve_feature_path("torch").last), "torch", ""),
      File.join(File.dirname($LOAD_PATH.resolve_feature_path("torchvision").last), "torchvision", ""),
      File.join(File.expand_path("../..", __dir__), "")
    ].freeze
    # Set while a forward whose modules were all found to keep nothing runs: the forwards under it need
    # not look again.
    CHECKED = :pytorch_parity_intermediates_checked
    KEEP = ->(_intermediate, output) { output }

    module_function

    # Yields free, a lambda free.(intermediate, output) that frees intermediate where it may go and returns
    # output, for the forward of mod, called with input.
    def freeing(mod, input)
      free = ->(intermediate, output) { TensorMemory.free_intermediate(intermediate, output, input) }
      return yield(free) if Thread.current[CHECKED]
      return yield(KEEP) unless keeps_nothing?(mod)

      begin
        Thread.current[CHECKED] = true
        yield(free)
      ensure
        Thread.current[CHECKED] = false
      end
    end

    # Calling mod runs the gems' code and pytorch_parity's only, and so does every module it calls.
    def keeps_nothing?(mod)
      case kind(mod)
      when :leaf then true
      when :lists_its_modules then mod.modules_called.all? { |called| keeps_nothing?(called) }
      else false
      end
    end

    # :leaf, :lists_its_modules or nil (a module whose code is not all the gems' and ours, or whose forward
    # may call modules it does not list). Its code: CODE_CALLED, as far as its class defines them. A class is looked at once, when its first module is: a forward or
    # call defined for it after that is not seen (one defined for a module alone always is).
    def kind(mod)
      return nil unless mod.singleton_methods.empty?

      KINDS.fetch(mod.class) { KINDS[mod.class] = kind_of_class(mod.class) }
    end
    KINDS = {}.compare_by_identity
    CODE_CALLED = %i[call forward _forward_impl].freeze # _forward_impl: the forward of torchvision-ruby's ResNet

    def kind_of_class(klass)
      return nil unless CODE_CALLED.all? { |name| !klass.method_defined?(name) || own_method?(klass.instance_method(name)) }
      return :leaf if LEAVES.key?(klass)

      :lists_its_modules if klass.method_defined?(:modules_called)
    end

    # Every definition of method, its own and those it may reach with super, is in the gems' code or ours.
    def own_method?(method)
      while method
        file = method.source_location&.first
        return false unless file && OWN_CODE.any? { |root| file.start_with?(root) }

        method = method.super_method
      end
      true
    end
  end
end
