# frozen_string_literal: true

module Hymenoptera
  # What the training loop reports to whoever watches it: the trainer watches nothing, the replay and
  # `bin/train --record` record every step (mirrors reference_py/observer.py).
  #
  # The loop calls after_step after each optimizer step (the gradients of that step are still in
  # .grad), after_eval_batch with each evaluation batch's outputs, and after_epoch after the epoch's
  # validation.
  class Observer
    def after_step(model, optimizer, inputs, labels, loss); end

    def after_eval_batch(outputs); end

    def after_epoch(epoch, model, optimizer); end

    # SGD's momentum buffer of every parameter that has one, by parameter name, copied.
    def self.momentum_buffers(model, optimizer)
      model.named_parameters.filter_map do |name, param|
        buffer = optimizer.state.fetch(param, {})[:momentum_buffer]
        [name, buffer.clone] if buffer
      end.to_h
    end
  end

  NO_OBSERVER = Observer.new

  # Records, for bundles in fixtures/README.md's run directory layout: the loss of every step
  # (step_losses), the first batch (first_batch), the gradients after the first backward
  # (grads_step1), the momentum buffers after the first step (momentum_step1) and at the end
  # (momentum_last); given states_to:, the state dict after each epoch (state_epoch_K) goes there as
  # the epoch ends.
  class Recorder < Observer
    def initialize(states_to: nil)
      super()
      @states_to = states_to
      @step_losses = [[]]
      @first = nil
      @momentum_last = {}
    end

    def after_step(model, optimizer, inputs, labels, loss)
      @step_losses.last << loss.item
      @first ||= {
        "first_batch" => {"inputs" => inputs.clone, "labels" => labels.clone},
        "grads_step1" => model.named_parameters.select { |_, p| p.requires_grad }.transform_values { |p| p.grad.clone },
        "momentum_step1" => Observer.momentum_buffers(model, optimizer)
      }
    end

    def after_epoch(epoch, model, optimizer)
      @step_losses << []
      @momentum_last = Observer.momentum_buffers(model, optimizer)
      TensorIO.write_bundle(File.join(@states_to, "state_epoch_#{epoch}"), model.state_dict) if @states_to
    end

    def write(out)
      (@first || {}).each { |name, tensors| TensorIO.write_bundle(File.join(out, name), tensors) }
      TensorIO.write_bundle(File.join(out, "momentum_last"), @momentum_last)
      TensorIO.write_bundle(File.join(out, "step_losses"),
                            {"step_losses" => Torch.tensor(@step_losses[0...-1], dtype: :float32)})
    end
  end

  # Keeps every evaluation batch's outputs (the replay's initial logits).
  class OutputsRecorder < Observer
    attr_reader :outputs

    def initialize
      super
      @outputs = []
    end

    def after_eval_batch(outputs)
      @outputs << outputs
    end
  end
end
