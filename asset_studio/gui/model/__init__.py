"""GUI state without widgets: QObjects with change signals that tests drive without a window.

create_form: the Create tab's settings → an AssetRequest; queue: the jobs and their states;
library: the images in the output folder; layout_state: the layout that generation follows.
"""
