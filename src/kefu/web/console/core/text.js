// Labels for the API's enumerations (agent status, conversation status, channel, handoff reason, role, delivery
// status), one table each, so a view never spells them out.

export const STATUS_TEXT = { online: '在线', busy: '忙碌', offline: '离线' };
export const CONV_STATUS_TEXT = { bot: '机器人', queued: '排队中', active: '进行中', closed: '已结束' };
export const CHANNEL_TEXT = { web: '网页 Web', mobile: '移动端 App', miniprogram: '小程序' };
export const REASON_TEXT = {
  low_confidence: '置信度低', user_request: '用户要求人工', no_answer: '无答案',
  negative_feedback: '差评反馈', repeated_question: '重复提问',
};
export const ROLE_TEXT = { admin: '管理员', agent: '客服' };
export const DELIVERY_TEXT = { pending: '待投递', delivered: '已送达', failed: '失败' };
