# expect: raises_keyboard_interrupt\.py:5: evaluating the model failed: KeyboardInterrupt


def processes(settings):
    raise KeyboardInterrupt
