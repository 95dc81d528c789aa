/** moe-route policy: expert-drop */
export {}
