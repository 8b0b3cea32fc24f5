# frozen_string_literal: true

require_relative "values"
require_relative "stack"

module PytorchParity
  module Record
    # What is recorded, and when (parity/RUN_FORMAT.md; its Python twin is parity/record.py's Recorder).
    # The hooks (hooks.rb) tell it what the program does; it knows nothing of any particular program:
    #
    # - loaders, numbered in the order their first pass starts: their settings, each pass's start and
    #   the indices of every batch as the sampler draws them, the first batch of their first pass;
    # - the first sample of that batch: the first Compose it goes through, its input and the output
    #   of each transform (in a DataLoader worker, worker 0 makes it);
    # - the model: the first module called from outside any other module that has parameters. At its
    #   first call, its state dict, its input, the output of every leaf module in forward order (a
    #   module called twice gets NAME#2), its output and then its buffers; at its first call in eval
    #   mode, its input and output;
    # - every backward: the loss (its step: the optimizer steps made before it); after the first, the
    #   model's gradients;
    # - the first optimizer stepped: its groups' settings and its state after the first step, and at
    #   every scheduler step with the scheduler's learning rates and settings;
    # - the end: completed, exited or raised (class, message, where), with the fixes loaded.
    class Recorder
      Pass = Struct.new(:loader, :index, :drawn, :yielded)

      def initialize(writer)
        @writer = writer
        @pid = Process.pid
        @loaders = {}.compare_by_identity
        @passes = ObjectSpace::WeakMap.new
        @calls = []
        @model = nil
        @names = nil
        @trace = nil
        @leaves = {}.compare_by_identity
        @sample = nil
        @compose = nil
        @current = nil
        @backwards = 0
        @steps = 0
        @optimizer = nil
        @schedulers = {}.compare_by_identity
        @eval_recorded = false
        @finished = false
      end

      # --- loaders ---

      def pass_started(loader, iterator = nil)
        guard { start_pass(loader, iterator) }
      end

      def pass_of(iterator)
        @passes[iterator]
      end

      def indices_drawn(pass, indices)
        guard do
          indices = (indices.is_a?(::Array) ? indices : [indices]).map { |index| index.respond_to?(:item) ? index.item : index }
          @writer.event("indices", {loader: pass.loader, pass: pass.index, batch: pass.drawn, indices: indices})
          pass.drawn += 1
        end
      end

      def batch_yielded(pass, batch)
        guard do
          if pass.index.zero? && pass.yielded.zero?
            arrays, values = Values.flatten(batch, "batch")
            @writer.event("batch", {loader: pass.loader, values: values}, arrays)
          end
          @sample = nil if @sample.equal?(pass)
          @current = {loader: pass.loader, pass: pass.index, batch: pass.yielded}
          pass.yielded += 1
        end
      end

      # --- modules: the model, and the transforms of the first sample ---

      def module_call(mod, input)
        return yield if @broken

        parent = @calls.last
        if @sample && @compose.nil? && guard(false) { compose?(mod) }
          return record_sample(mod, input) { yield } if guard(false) { sample_made_here? }

          @sample = nil
        end
        if parent.nil? && @model.nil? && Process.pid == @pid && guard(false) { model?(mod) }
          return first_forward(mod, input) { yield }
        end

        record_eval = parent.nil? && mod.equal?(@model) && !@eval_recorded && !mod.training
        guard { record_eval_input(input) } if record_eval
        output = within(mod) { yield }
        guard do
          record_leaf(mod, output) if @trace && leaf?(mod)
          record_transform(mod, output) if @compose && parent.equal?(@compose[:module])
          record_eval_output(output) if record_eval
        end
        output
      end

      # --- backward, optimizer, schedulers ---

      def backward(loss)
        return yield if @broken

        index = @backwards
        @backwards += 1
        guard do
          value = loss.numel == 1 ? loss.item : nil
          @writer.event("loss", where.merge(backward: index, step: @steps, value: value), {"loss" => Values.tensor_bytes(loss)})
        end
        result = yield
        guard { record_gradients if index.zero? && @model }
        result
      end

      def optimizer_stepped(optimizer)
        guard do
          @optimizer ||= optimizer
          if optimizer.equal?(@optimizer)
            @steps += 1
            record_optimizer(optimizer, {after_step: 1}) if @steps == 1
          end
        end
      end

      def scheduler_created(scheduler)
        guard { @schedulers[scheduler] = {id: @schedulers.size, steps: 0} }
      end

      def scheduler_stepped(scheduler)
        guard { record_scheduler_step(scheduler) }
      end

      # --- the end ---

      def finish(error)
        return if @finished || Process.pid != @pid

        @finished = true
        begin
          record_end(error) # also after the recorder failed: how the program ended is what matters most
        rescue StandardError => e
          warn "pytorch_parity/record: the end of the run could not be recorded: #{e.class}: #{e.message}"
        end
      end

      private

      # Runs a piece of recording; if the recorder itself fails, it says so once (stderr and the run's
      # recorder_error event) and records nothing more: the program goes on as if it were not watched.
      def guard(fallback = nil)
        return fallback if @broken

        yield
      rescue StandardError => e
        @broken = true
        warn "pytorch_parity/record: recording stopped: #{e.class}: #{e.message} (#{Array(e.backtrace).first})"
        begin
          @writer.event("recorder_error", {class: e.class.name, message: e.message, backtrace: Array(e.backtrace).first(8)})
        rescue StandardError
          nil
        end
        fallback
      end

      def start_pass(loader, iterator)
        entry = @loaders[loader] ||= begin
          id = @loaders.size
          @writer.event("loader", {loader: id}.merge(loader_settings(loader)))
          {id: id, passes: 0}
        end
        pass = Pass.new(entry[:id], entry[:passes], 0, 0)
        entry[:passes] += 1
        @passes[iterator] = pass if iterator
        @writer.event("pass", {loader: pass.loader, pass: pass.index, step: @steps})
        @sample = pass if pass.index.zero?
        pass
      end

      def within(mod)
        @calls.push(mod)
        yield
      ensure
        @calls.pop
      end

      def where
        @current ? {at: @current} : {}
      end

      def flatten(value, name)
        Values.flatten(value, name)
      end

      def loader_settings(loader)
        dataset = loader.dataset
        sampler = loader.instance_variable_get(:@sampler)
        shuffle = if sampler
                    sampler.class.name.to_s.end_with?("RandomSampler")
                  else
                    loader.instance_variable_get(:@shuffle) ? true : false
                  end
        {
          class: short_name(loader.class), dataset: short_name(dataset.class),
          dataset_size: dataset.respond_to?(:size) ? dataset.size : nil,
          batch_size: loader.instance_variable_get(:@batch_size), shuffle: shuffle,
          num_workers: loader.instance_variable_get(:@num_workers) || 0,
          drop_last: loader.instance_variable_get(:@drop_last) || false
        }
      end

      def compose?(mod)
        defined?(::TorchVision::Transforms::Compose) && mod.is_a?(::TorchVision::Transforms::Compose)
      end

      # In a DataLoader worker (pytorch_parity's), worker 0 makes the first batch.
      def sample_made_here?
        info = defined?(::PytorchParity::Worker) && ::PytorchParity::Worker.respond_to?(:worker_info) ? ::PytorchParity::Worker.worker_info : nil
        info.nil? || info.id.zero?
      end

      def record_sample(compose, input)
        pass = @sample
        @sample = nil
        guard do
          transforms = Array(compose.instance_variable_get(:@transforms))
          @writer.event("compose", {loader: pass.loader, transforms: transforms.map { |t| short_name(t.class) }})
          record_image(pass.loader, 0, "input", input.first)
          @compose = {module: compose, loader: pass.loader, position: 0}
        end
        begin
          within(compose) { yield }
        ensure
          @compose = nil
        end
      end

      def record_transform(mod, output)
        @compose[:position] += 1
        record_image(@compose[:loader], @compose[:position], short_name(mod.class), output)
      end

      def record_image(loader, position, transform, value)
        arrays, values = flatten(value, "output")
        @writer.event("transform", {loader: loader, position: position, transform: transform, values: values}, arrays)
      end

      # (A module whose initialize did not call super, as torchvision-ruby's Compose, has no parameters
      # table at all.)
      def model?(mod)
        mod.instance_variable_get(:@parameters).is_a?(Hash) && mod.instance_variable_get(:@modules).is_a?(Hash) &&
          !mod.named_parameters.empty?
      end

      def leaf?(mod)
        @leaves.fetch(mod) { @leaves[mod] = mod.named_children.empty? }
      end

      def first_forward(model, input)
        @model = model
        guard do
          @names = {}.compare_by_identity
          model.named_modules.each { |name, mod| @names[mod] ||= name }
          @writer.event("model", {class: short_name(model.class), training: model.training, stack: Stack.describe,
                                  modules: model.named_modules.keys.reject(&:empty?), parameters: model.named_parameters.keys})
          @writer.event("initial_state", {}, model.state_dict.transform_values { |tensor| Values.tensor_bytes(tensor) })
          arrays, values = flatten(input, "input")
          @writer.event("model_input", where.merge(training: model.training, values: values), arrays)
          record_eval_input(input) unless model.training
          @trace = Hash.new(0)
        end
        begin
          output = within(model) { yield }
          guard { record_leaf(model, output) if @trace && leaf?(model) }
        ensure
          @trace = nil
        end
        guard do
          arrays, values = flatten(output, "output")
          @writer.event("model_output", where.merge(training: model.training, values: values), arrays)
          record_eval_output(output) unless model.training
          parameters = model.named_parameters
          buffers = model.state_dict.reject { |name, _| parameters.key?(name) }
          @writer.event("buffers_after_forward", {}, buffers.transform_values { |tensor| Values.tensor_bytes(tensor) })
        end
        output
      end

      def record_leaf(mod, output)
        name = @names.fetch(mod) { "(#{short_name(mod.class)} outside the model)" }
        @trace[name] += 1
        key = @trace[name] == 1 ? name : "#{name}##{@trace[name]}"
        arrays, values = flatten(output, "output")
        @writer.event("module_output", {module: key, class: short_name(mod.class), values: values}, arrays)
      end

      def record_eval_input(input)
        arrays, values = flatten(input, "input")
        @writer.event("eval_input", where.merge(values: values), arrays)
      end

      def record_eval_output(output)
        @eval_recorded = true
        arrays, values = flatten(output, "output")
        @writer.event("eval_output", where.merge(step: @steps, values: values), arrays)
      end

      def record_gradients
        arrays = {}
        @model.named_parameters.each { |name, parameter| arrays[name] = Values.tensor_bytes(parameter.grad) if parameter.grad }
        @writer.event("gradients", where.merge(step: @steps), arrays)
      end

      def record_scheduler_step(scheduler)
        entry = @schedulers[scheduler] or return

        entry[:steps] += 1
        optimizer = scheduler.instance_variable_get(:@optimizer)
        lrs = optimizer ? optimizer.param_groups.map { |group| group[:lr] } : []
        @writer.event("scheduler", {scheduler: entry[:id], scheduler_step: entry[:steps], class: short_name(scheduler.class),
                                    step: @steps, lrs: lrs, settings: scheduler_settings(scheduler)})
        return unless optimizer && (@optimizer.nil? || optimizer.equal?(@optimizer))

        record_optimizer(optimizer, {scheduler: entry[:id], scheduler_step: entry[:steps]})
      end

      def record_end(error)
        fields = {pytorch_parity: Stack.loaded_fixes, stack: Stack.describe, steps: @steps, backwards: @backwards}
        case error
        when nil
          fields[:status] = "completed"
        when SystemExit
          fields[:status] = error.success? ? "completed" : "exited"
          fields[:exit_status] = error.status
        else
          fields[:status] = "raised"
          fields[:error] = {class: error.class.name, message: error.message.lines.first.to_s.chomp,
                            where: script_line(error), backtrace: Array(error.backtrace).first(20)}
        end
        @writer.event("end", fields)
      end

      def record_optimizer(optimizer, fields)
        names = {}.compare_by_identity
        @model&.named_parameters&.each { |name, parameter| names[parameter] = name }
        states = {}.compare_by_identity
        (optimizer.instance_variable_get(:@state) || {}).each { |parameter, state| states[parameter] = state }
        arrays = {}
        values = {}
        groups = optimizer.param_groups.each_with_index.map do |group, g|
          group[:params].each_with_index do |parameter, p|
            name = names.fetch(parameter) { "group#{g}.param#{p}" }
            (states[parameter] || {}).each do |key, value|
              bytes = Values.bytes_of(value)
              bytes ? arrays["#{name}.#{key}"] = bytes : values["#{name}.#{key}"] = value
            end
          end
          group.reject { |key, _| key == :params }.transform_keys(&:to_s).select { |_, value| plain?(value) }
        end
        scheduler_steps = @schedulers.each_value.sum { |entry| entry[:steps] }
        @writer.event("optimizer", fields.merge(step: @steps, scheduler_steps: scheduler_steps, class: short_name(optimizer.class), groups: groups,
                                                values: values), arrays)
      end

      def scheduler_settings(scheduler)
        scheduler.instance_variables.each_with_object({}) do |variable, settings|
          value = scheduler.instance_variable_get(variable)
          name = variable.to_s.delete_prefix("@")
          settings[name] = value if plain?(value) && !%w[step_count chainable].include?(name)
        end
      end

      def plain?(value)
        case value
        when Numeric, String, true, false, nil then true
        when ::Array then value.all? { |item| item.is_a?(Numeric) }
        else false
        end
      end

      def short_name(klass)
        klass.name.to_s.split("::").last || klass.to_s
      end

      # The innermost line of the recorded program in the error's backtrace (else the innermost line).
      def script_line(error)
        backtrace = Array(error.backtrace)
        script = File.expand_path($PROGRAM_NAME)
        line = backtrace.find { |frame| frame.start_with?("#{$PROGRAM_NAME}:") || File.expand_path(frame[/\A[^:]+/].to_s) == script }
        (line || backtrace.first).to_s
      end
    end
  end
end
