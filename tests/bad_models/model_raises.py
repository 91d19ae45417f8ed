# expect: model_raises\.py:8: evaluating the model failed: KeyError: 'port_base'
from procmgmt import Instance, Process


def processes(settings):
    params = dict(settings.extra_params)
    web = Process(name="web", process="/bin/sleep")
    return {"web": Instance(web, port=params["port_base"])}
