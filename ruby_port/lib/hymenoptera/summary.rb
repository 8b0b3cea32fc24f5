# frozen_string_literal: true

# Strategies.architecture, for the --input-size check before LibTorch loads (neither loads LibTorch).
require_relative "model"
require_relative "strategies"

module Hymenoptera
  # A torchinfo-style summary of the model a strategy builds: every module (name and type), its output
  # shape, its parameter count, whether it trains; then the totals (mirrors reference_py/summary.py, row
  # for row). The structure does not depend on the weights' values: the model is built without
  # pretrained weights.
  module Summary
    DEFAULT_INPUT_SIZE = [1, 3, 224, 224].freeze
    MAX_PIXELS = 1024 * 1024 # N x H x W: one 1024 x 1024 image's pixels (VGG-16's first layers hold 64 channels of each)
    # The smallest height and width each backbone takes: torchvision's min_size (its weights' meta), which
    # torchvision-ruby does not carry.
    SMALLEST_SIDES = {"resnet18" => 1, "vgg16" => 32}.freeze
    HEADER = ["Layer (type)", "Output Shape", "Param #", "Trainable"].freeze
    WIDTHS = [44, 22, 14, 9].freeze

    module_function

    # name => the output shape of each module's first call, in one eval forward pass of zeros. torch.rb
    # has no forward hooks: each module's forward is wrapped for the pass.
    def output_shapes(model, input_size)
      shapes = {}
      wrapped = model.named_modules.map do |name, mod|
        mod.define_singleton_method(:forward) do |*args, **kwargs|
          output = super(*args, **kwargs)
          shapes[name] ||= output.shape
          output
        end
        mod
      end
      model.eval
      Torch.no_grad { model.call(Torch.zeros(*input_size)) }
      shapes
    ensure
      wrapped&.each { |mod| mod.singleton_class.send(:remove_method, :forward) }
    end

    # True, False, Partial, or -- for a module without parameters.
    def trainable(parameters)
      flags = parameters.map(&:requires_grad).uniq
      return "--" if flags.empty?

      flags.size > 1 ? "Partial" : flags.first.to_s.capitalize
    end

    def type_name(mod)
      mod.class.name.split("::").last
    end

    # [depth, name, type, output shape, parameter count, trainable] of every module, in registration order.
    def rows(model, input_size = DEFAULT_INPUT_SIZE)
      shapes = output_shapes(model, input_size)
      model.named_modules.map do |name, mod|
        [name.empty? ? 0 : name.count(".") + 1, name.empty? ? type_name(mod) : name, type_name(mod), shapes[name],
         mod.parameters.sum(&:numel), trainable(mod.parameters)]
      end
    end

    def totals(model)
      total = model.parameters.sum(&:numel)
      trained = model.parameters.select(&:requires_grad).sum(&:numel)
      {"Total params" => total, "Trainable params" => trained, "Non-trainable params" => total - trained}
    end

    def with_commas(count)
      count.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
    end

    def line(cells)
      cells.zip(WIDTHS).map { |cell, width| cell.to_s.ljust(width) }.join.rstrip
    end

    # The summary as text, one row per line.
    def format_summary(model, input_size = DEFAULT_INPUT_SIZE)
      rule = "=" * WIDTHS.sum
      lines = [rule, line(HEADER), rule]
      rows(model, input_size).each do |depth, name, kind, shape, count, trains|
        label = depth.zero? ? name : "#{"  " * (depth - 1)}#{name} (#{kind})"
        lines << line([label, shape.nil? ? "--" : shape.to_s, with_commas(count), trains])
      end
      lines << rule
      lines += totals(model).map { |label, count| "#{label}: #{with_commas(count)}" }
      lines << "Input size: #{input_size.to_a}"
      lines << rule
      lines.join("\n")
    end

    def smallest_side(arch)
      SMALLEST_SIDES.fetch(arch)
    end

    # N 3 H W that the strategy's model runs on, else a UserError (the forward pass would raise).
    def check_input_size(input_size, strategy)
      count, channels, height, width = input_size
      arch = Strategies.architecture(strategy)
      low = smallest_side(arch)
      if count < 1 || channels != 3 || [height, width].min < low || count * height * width > MAX_PIXELS
        raise UserError, "--input-size #{input_size}: expected N 3 H W, with N at least 1, 3 channels (RGB, as " \
                         "the first convolution takes), H and W at least #{low} (#{arch}'s smallest input) and N x H x W " \
                         "at most #{with_commas(MAX_PIXELS)}, such as the default #{DEFAULT_INPUT_SIZE}"
      end

      input_size
    end

    def get_args_parser
      parser = ArgumentParser.new("ruby ruby_port/bin/summary",
                                  description: "A torchinfo-style summary of the model a strategy builds: every module " \
                                               "(name and type), its output shape, its parameter count, whether it " \
                                               "trains; then the totals. The twin of reference_py/summary.py, row for row.")
      parser.add_argument("--strategy", choices: Recipe.choices("strategy"), default: Recipe.default("strategy"),
                                        help: "the model of this strategy (default #{Recipe.default("strategy")})")
      parser.add_argument("--input-size", type: Integer, nargs: 4, default: DEFAULT_INPUT_SIZE, metavar: %w[N C H W],
                                          help: "the input of the forward pass that gives the output shapes " \
                                                "(default #{DEFAULT_INPUT_SIZE.join(" ")})")
      parser
    end

    def main(argv)
      options = get_args_parser.parse_args(argv)
      check_input_size(options[:input_size], options[:strategy]) # before LibTorch loads: a refused size costs nothing
      CLI.load_port # the long work starts here, once the options are checked
      puts format_summary(Strategies.build_model(options[:strategy], nil), options[:input_size])
    end
  end
end
