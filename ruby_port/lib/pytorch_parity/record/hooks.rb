# frozen_string_literal: true

require "delegate"

module PytorchParity
  module Record
    # Where the recorder watches torch.rb and torchvision-ruby: modules prepended to their classes, each
    # calling super and handing what it saw to Record.recorder, so that what the program computes is
    # unchanged. Installed when pytorch_parity/record loads; the hooks on an optimizer's or a scheduler's
    # own class when its first instance is made (SGD#step is SGD's, not Optimizer's), and those on
    # pytorch_parity's DataLoader iterators when a DataLoader is made, so that pytorch_parity may load
    # before or after the recorder.
    module Hooks
      # Torch::NN::Module#call: the model, its leaf modules, and the Compose of the first sample (a
      # torchvision-ruby transform is a module).
      module ModuleCall
        def call(*input, **kwargs, &block)
          recorder = Record.recorder
          return super unless recorder

          recorder.module_call(self, input) { super }
        end
      end

      module TensorBackward
        def backward(*args, **kwargs)
          recorder = Record.recorder
          return super unless recorder

          recorder.backward(self) { super }
        end
      end

      module OptimizerNew
        def new(*args, **kwargs, &block)
          Hooks.prepend_once(self, OptimizerStep)
          super
        end
      end

      module OptimizerStep
        def step(*args, **kwargs, &block)
          result = super
          Record.recorder&.optimizer_stepped(self)
          result
        end
      end

      # A scheduler's steps are recorded from the first after its construction (its initialize steps once).
      module SchedulerNew
        def new(*args, **kwargs, &block)
          Hooks.prepend_once(self, SchedulerStep)
          scheduler = super
          Record.recorder&.scheduler_created(scheduler)
          scheduler
        end
      end

      module SchedulerStep
        def step(*args, **kwargs, &block)
          result = super
          Record.recorder&.scheduler_stepped(self)
          result
        end
      end

      module DataLoaderNew
        def new(*args, **kwargs, &block)
          Hooks.install_pytorch_parity_loader
          super
        end
      end

      # torch.rb's own DataLoader#each: it reads @dataset[i] for each index of a batch, then yields the
      # batch; the indices are seen through a delegator put in @dataset while the loader makes a batch
      # (the program's block sees the dataset itself). pytorch_parity's DataLoader is watched through its
      # iterators instead (below).
      module DataLoaderEach
        def each(&block)
          recorder = Record.recorder
          return super unless block && recorder && !Hooks.pytorch_parity_loader?(self)

          pass = recorder.pass_started(self)
          dataset = @dataset
          drawn = []
          proxy = IndexRecorder.new(dataset, drawn)
          @dataset = proxy
          begin
            super() do |batch|
              @dataset = dataset
              recorder.indices_drawn(pass, drawn.dup)
              drawn.clear
              recorder.batch_yielded(pass, batch)
              block.call(batch)
              @dataset = proxy
            end
          ensure
            @dataset = dataset
            recorder.indices_drawn(pass, drawn) unless drawn.empty? # a batch cut short by an error
          end
        end
      end

      class IndexRecorder < SimpleDelegator
        def initialize(dataset, drawn)
          super(dataset)
          @drawn = drawn
        end

        def [](index)
          @drawn << index
          __getobj__[index]
        end
      end

      # pytorch_parity's BaseDataLoaderIter: a pass starts with the iterator; next_index is where the
      # sampler's indices are drawn (in this process, also with worker processes).
      module LoaderIterator
        def initialize(loader, *args, **kwargs, &block)
          super
          Record.recorder&.pass_started(loader, self)
        end

        private

        def next_index
          index = super
          recorder = Record.recorder
          pass = recorder&.pass_of(self)
          recorder.indices_drawn(pass, index) if pass && !index.nil?
          index
        end
      end

      module LoaderIteratorEach
        def each(&block)
          recorder = Record.recorder
          pass = recorder&.pass_of(self)
          return super unless block && pass

          super() do |batch|
            recorder.batch_yielded(pass, batch)
            block.call(batch)
          end
        end
      end

      module_function

      def install
        prepend_once(Torch::NN::Module, ModuleCall)
        prepend_once(Torch::Tensor, TensorBackward)
        prepend_once(Torch::Optim::Optimizer.singleton_class, OptimizerNew)
        prepend_once(Torch::Optim::LRScheduler::LRScheduler.singleton_class, SchedulerNew)
        prepend_once(Torch::Utils::Data::DataLoader.singleton_class, DataLoaderNew)
        prepend_once(Torch::Utils::Data::DataLoader, DataLoaderEach)
        install_pytorch_parity_loader
      end

      def install_pytorch_parity_loader
        return unless defined?(::PytorchParity::BaseDataLoaderIter)

        prepend_once(::PytorchParity::BaseDataLoaderIter, LoaderIterator)
        prepend_once(::PytorchParity::SingleProcessDataLoaderIter, LoaderIteratorEach)
        prepend_once(::PytorchParity::MultiProcessingDataLoaderIter, LoaderIteratorEach) if defined?(::PytorchParity::MultiProcessingDataLoaderIter)
      end

      def pytorch_parity_loader?(loader)
        defined?(::PytorchParity::DataLoader) && loader.is_a?(::PytorchParity::DataLoader)
      end

      def prepend_once(target, hook)
        target.prepend(hook) unless target.ancestors.include?(hook)
      end
    end
  end
end
